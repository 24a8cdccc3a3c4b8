"""SqlVideoRepository: each task's one video record, found by the business video_id for its owner."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from download_server.adapters import rows
from download_server.adapters.orm import TaskRow, VideoRow
from download_server.adapters.paging import page
from download_server.domain.errors import task_missing, video_missing
from download_server.domain.listing import Cursor, Ordering, Page, VideoQuery
from download_server.domain.models import Video


class SqlVideoRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def of_task(self, task_id: str) -> Video | None:
        row = self._s.scalars(select(VideoRow).where(VideoRow.task_id == task_id)).one_or_none()
        return rows.to_video(row) if row is not None else None

    def save(self, video: Video) -> Video:
        owner = self._s.scalar(select(TaskRow.user_id).where(TaskRow.id == video.task_id).with_for_update())
        if owner is None:
            raise task_missing(video.task_id)
        row = self._s.scalars(select(VideoRow).where(VideoRow.task_id == video.task_id)).one_or_none()
        if row is None:
            row = VideoRow(id=video.id, task_id=video.task_id, user_id=owner)
            self._s.add(row)
        rows.write_video(row, video)
        self._s.flush()
        return rows.to_video(row)

    def newest(self, video_id: str, user_id: str) -> Video:
        query = (
            select(VideoRow)
            .where(VideoRow.user_id == user_id, VideoRow.video_id == video_id)
            .order_by(VideoRow.create_time.desc(), VideoRow.id.desc())
            .limit(1)
        )
        row = self._s.scalars(query).one_or_none()
        if row is None:
            raise video_missing(video_id)
        return rows.to_video(row)

    def remove_of_task(self, task_id: str) -> None:
        self._s.execute(delete(VideoRow).where(VideoRow.task_id == task_id))

    def page(self, query: VideoQuery, cursor: Cursor | None, limit: int) -> Page[Video]:
        filters = [VideoRow.user_id == query.user_id, VideoRow.task_id == query.task_id]
        found = page(self._s, VideoRow, filters, Ordering(), cursor, limit)
        return Page([rows.to_video(row) for row in found.items], found.next_cursor, found.total_size)
