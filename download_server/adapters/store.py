"""SqlTaskStore: the TaskStore port and the use cases' queries in SQL, one transaction per call, off the loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from download_server.adapters import repository as repo
from download_server.adapters.orm import FailureRow, SegmentRow, TaskRow, VideoRow
from download_server.domain.errors import video_missing
from download_server.domain.listing import Cursor, FailureQuery, Ordering, Page, TaskQuery, VideoQuery
from download_server.domain.models import Failure, FailureStatus, Segment, Task, TaskStatus, Video
from download_server.services.ports import DeletedTask
from mediadl_common.db import Database
from mediadl_common.errors import AlreadyExists

T = TypeVar("T")
OPEN_FAILURES = (FailureStatus.PENDING, FailureStatus.RETRYING)


class SqlTaskStore:
    """Implements the engine's TaskStore and the use cases' Store (download_server.services.ports) over SQL.

    Every public method is one transaction run in the database thread pool; a DomainError raised inside
    (NotFound, FailedPrecondition from a state check) rolls it back.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _run(self, work: Callable[[Session], T]) -> T:
        return await self._db.run(self._transaction, work)

    def _transaction(self, work: Callable[[Session], T]) -> T:
        with self._db.session_factory.begin() as session:
            return work(session)

    # Tasks

    async def get_task(self, task_id: str, user_id: str | None = None) -> Task:
        return await self._run(lambda s: repo.to_task(repo.task_row(s, task_id, user_id)))

    async def save_task(self, task: Task) -> None:
        await self._run(lambda s: repo.upsert_task(s, task))

    async def tasks_with_status(self, statuses: Sequence[TaskStatus]) -> list[Task]:
        values = [status.value for status in statuses]

        def work(s: Session) -> list[Task]:
            rows = s.scalars(select(TaskRow).where(TaskRow.status.in_(values)).order_by(TaskRow.create_time))
            return [repo.to_task(row) for row in rows]

        return await self._run(work)

    async def tasks_by_ids(self, task_ids: Sequence[str]) -> list[Task]:
        """The tasks among `task_ids` that exist (a replica re-reads what its watchers wait on after a relay gap)."""

        def work(s: Session) -> list[Task]:
            found: list[Task] = []
            for start in range(0, len(task_ids), 500):
                chunk = list(task_ids[start : start + 500])
                found += [repo.to_task(row) for row in s.scalars(select(TaskRow).where(TaskRow.id.in_(chunk)))]
            return found

        return await self._run(work)

    async def update_task(self, task_id: str, user_id: str | None, change: Callable[[Task], bool]) -> Task:
        """Read, change and write a task in one locked transaction.

        `change` mutates the task (raising a DomainError refuses the change) and returns True when what was
        downloaded so far is obsolete (a new resource_url). Then, in the same transaction, its segment rows
        and video record are deleted and its open failure records abandoned (nothing there can be retried).
        """

        def work(s: Session) -> Task:
            row = repo.task_row(s, task_id, user_id, lock=True)
            task = repo.to_task(row)
            if change(task):
                repo.delete_segment_rows(s, task_id)
                s.execute(delete(VideoRow).where(VideoRow.task_id == task_id))
                s.execute(
                    update(FailureRow)
                    .where(FailureRow.task_id == task_id, FailureRow.status.in_([f.value for f in OPEN_FAILURES]))
                    .values(status=FailureStatus.ABANDONED.value, update_time=task.update_time)
                )
            repo.write_task(row, task)
            return task

        return await self._run(work)

    async def delete_task(self, task_id: str, user_id: str | None = None) -> DeletedTask:
        """Delete a task with its segments, failures and video (explicitly, not only by FK cascade)."""

        def work(s: Session) -> DeletedTask:
            row = repo.task_row(s, task_id, user_id, lock=True)
            video_row = s.scalars(select(VideoRow).where(VideoRow.task_id == task_id)).one_or_none()
            deleted = DeletedTask(repo.to_task(row), repo.to_video(video_row) if video_row else None)
            s.execute(delete(SegmentRow).where(SegmentRow.task_id == task_id))
            s.execute(delete(FailureRow).where(FailureRow.task_id == task_id))
            s.execute(delete(VideoRow).where(VideoRow.task_id == task_id))
            s.delete(row)
            return deleted

        return await self._run(work)

    async def user_tasks(self, user_id: str, statuses: Sequence[TaskStatus] = ()) -> list[Task]:
        """All of a user's tasks (with one of `statuses`, if any), oldest first: WatchTasks' first messages."""

        def work(s: Session) -> list[Task]:
            query = select(TaskRow).where(TaskRow.user_id == user_id)
            if statuses:
                query = query.where(TaskRow.status.in_([status.value for status in statuses]))
            return [repo.to_task(row) for row in s.scalars(query.order_by(TaskRow.create_time, TaskRow.id))]

        return await self._run(work)

    async def list_tasks(self, query: TaskQuery, cursor: Cursor | None, limit: int) -> Page[Task]:
        filters = [TaskRow.user_id == query.user_id]
        if query.statuses:
            filters.append(TaskRow.status.in_([status.value for status in query.statuses]))

        def work(s: Session) -> Page[Task]:
            rows = repo.page(s, TaskRow, filters, query.ordering, cursor, limit)
            return Page([repo.to_task(row) for row in rows.items], rows.next_cursor, rows.total_size)

        return await self._run(work)

    # Segments

    async def list_segments(self, task_id: str) -> list[Segment]:
        def work(s: Session) -> list[Segment]:
            query = select(SegmentRow).where(SegmentRow.task_id == task_id).order_by(SegmentRow.segment_index)
            return [repo.to_segment(row) for row in s.scalars(query)]

        return await self._run(work)

    async def add_segments(self, task_id: str, segments: Sequence[Segment]) -> None:
        def work(s: Session) -> None:
            repo.task_row(s, task_id)
            repo.insert_segments(s, task_id, segments)

        try:
            await self._run(work)
        except IntegrityError:
            raise AlreadyExists(f"task {task_id} already has a segment with one of these indexes") from None

    async def delete_segments(self, task_id: str) -> None:
        await self._run(lambda s: repo.delete_segment_rows(s, task_id))

    async def save_progress(self, task: Task, segments: Sequence[Segment]) -> None:
        # Counters only: the status belongs to whoever changes state (user actions, the engine's finish),
        # so a throttled progress flush can never undo a pause or a cancel that raced it.
        def work(s: Session) -> None:
            repo.write_counters(s, task)
            repo.write_segments(s, task.id, segments)

        await self._run(work)

    # Failures

    async def add_failure(self, failure: Failure) -> Failure:
        def work(s: Session) -> Failure:
            task = repo.task_row(s, failure.task_id)
            row = FailureRow(id=failure.id, task_id=failure.task_id, user_id=task.user_id)
            repo.write_failure(row, failure)
            s.add(row)
            return failure

        return await self._run(work)

    async def get_failure(self, failure_id: str, user_id: str | None = None) -> Failure:
        return await self._run(lambda s: repo.to_failure(repo.failure_row(s, failure_id, user_id)))

    async def save_failure(self, failure: Failure) -> None:
        await self._run(lambda s: repo.write_failure(repo.failure_row(s, failure.id), failure))

    async def update_failure(self, failure_id: str, user_id: str | None, change: Callable[[Failure], None]) -> Failure:
        """Read, change and write a failure record in one locked transaction."""

        def work(s: Session) -> Failure:
            row = repo.failure_row(s, failure_id, user_id, lock=True)
            failure = repo.to_failure(row)
            change(failure)
            repo.write_failure(row, failure)
            return failure

        return await self._run(work)

    async def task_failures(self, task_id: str, statuses: Sequence[FailureStatus] = ()) -> list[Failure]:
        def work(s: Session) -> list[Failure]:
            query = select(FailureRow).where(FailureRow.task_id == task_id)
            if statuses:
                query = query.where(FailureRow.status.in_([status.value for status in statuses]))
            rows = s.scalars(query.order_by(FailureRow.create_time, FailureRow.id))
            return [repo.to_failure(row) for row in rows]

        return await self._run(work)

    async def list_failures(self, query: FailureQuery, cursor: Cursor | None, limit: int) -> Page[Failure]:
        filters = [FailureRow.user_id == query.user_id]
        if query.task_id is not None:
            filters.append(FailureRow.task_id == query.task_id)
        if query.statuses:
            filters.append(FailureRow.status.in_([status.value for status in query.statuses]))

        def work(s: Session) -> Page[Failure]:
            rows = repo.page(s, FailureRow, filters, Ordering(), cursor, limit)
            return Page([repo.to_failure(row) for row in rows.items], rows.next_cursor, rows.total_size)

        return await self._run(work)

    # Videos

    async def save_video(self, video: Video) -> Video:
        """Insert the task's video record, or overwrite the one it has (keeping that record's id)."""

        def work(s: Session) -> Video:
            task = repo.task_row(s, video.task_id, lock=True)
            row = s.scalars(select(VideoRow).where(VideoRow.task_id == video.task_id)).one_or_none()
            if row is None:
                row = VideoRow(id=video.id, task_id=video.task_id, user_id=task.user_id)
                s.add(row)
            repo.write_video(row, video)
            s.flush()
            return repo.to_video(row)

        return await self._run(work)

    async def get_video(self, video_id: str, user_id: str) -> Video:
        """The caller's video record for a business video_id (the newest, should several tasks share it)."""

        def work(s: Session) -> Video:
            query = (
                select(VideoRow)
                .where(VideoRow.user_id == user_id, VideoRow.video_id == video_id)
                .order_by(VideoRow.create_time.desc(), VideoRow.id.desc())
                .limit(1)
            )
            row = s.scalars(query).one_or_none()
            if row is None:
                raise video_missing(video_id)
            return repo.to_video(row)

        return await self._run(work)

    async def list_videos(self, query: VideoQuery, cursor: Cursor | None, limit: int) -> Page[Video]:
        filters = [VideoRow.user_id == query.user_id, VideoRow.task_id == query.task_id]

        def work(s: Session) -> Page[Video]:
            rows = repo.page(s, VideoRow, filters, Ordering(), cursor, limit)
            return Page([repo.to_video(row) for row in rows.items], rows.next_cursor, rows.total_size)

        return await self._run(work)
