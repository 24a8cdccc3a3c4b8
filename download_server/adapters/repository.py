"""Synchronous SQL on one session: row <-> domain mapping, scoped lookups and keyset-paginated queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from download_server.adapters.orm import FailureRow, SegmentRow, TaskRow, VideoRow
from download_server.domain.errors import failure_missing, task_missing
from download_server.domain.listing import Cursor, Ordering, Page, SortField
from download_server.domain.models import (
    Failure,
    FailureStatus,
    ResourceType,
    Segment,
    SegmentStatus,
    Task,
    TaskStatus,
    Video,
    VideoFormat,
)

R = TypeVar("R", TaskRow, FailureRow, VideoRow)

TASK_FIELDS = (
    "user_id video_id liveroom_id liveroom_title liveroom_url resource_url resource_type status progress "
    "bytes_downloaded bytes_total segments_total segments_done segments_failed retry_count last_error "
    "create_time update_time complete_time queued_time"
).split()
_COUNTER_FIELDS = (
    "progress bytes_downloaded bytes_total segments_total segments_done segments_failed last_error update_time"
).split()
_SEGMENT_FIELDS = (
    "uri duration byterange_offset byterange_length key_uri key_iv init_uri discontinuity status bytes attempts sha256"
).split()
_FAILURE_FIELDS = (
    "segment_index segment_url error_type error_message http_status attempts status create_time update_time"
).split()
# Bound parameters per IN list: far below every backend's limit (SQLite's is 32766, older builds 999).
_IN_CHUNK = 500
_VIDEO_FIELDS = "video_id file_path file_size duration_seconds format segment_count sha256 create_time".split()


def _copy(source: object, target: object, fields: Sequence[str]) -> None:
    for name in fields:
        setattr(target, name, getattr(source, name))


# Tasks


def to_task(row: TaskRow) -> Task:
    values: dict[str, Any] = {name: getattr(row, name) for name in TASK_FIELDS}
    values["resource_type"] = ResourceType(row.resource_type)
    values["status"] = TaskStatus(row.status)
    return Task(id=row.id, **values)


def task_row(session: Session, task_id: str, user_id: str | None = None, *, lock: bool = False) -> TaskRow:
    query = select(TaskRow).where(TaskRow.id == task_id)
    if user_id is not None:
        query = query.where(TaskRow.user_id == user_id)
    if lock:
        # Serialises read-modify-write against the engine on PostgreSQL; SQLite serialises writers anyway.
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise task_missing(task_id)
    return row


def write_task(row: TaskRow, task: Task, fields: Sequence[str] = TASK_FIELDS) -> None:
    _copy(task, row, fields)
    row.resource_type = task.resource_type.value
    row.status = task.status.value


def upsert_task(session: Session, task: Task) -> None:
    row = session.get(TaskRow, task.id)
    if row is None:
        row = TaskRow(id=task.id)
        session.add(row)
    write_task(row, task)


def write_counters(session: Session, task: Task) -> None:
    row = task_row(session, task.id)
    _copy(task, row, _COUNTER_FIELDS)


# Segments


def to_segment(row: SegmentRow) -> Segment:
    values: dict[str, Any] = {name: getattr(row, name) for name in _SEGMENT_FIELDS}
    values["status"] = SegmentStatus(row.status)
    return Segment(task_id=row.task_id, index=row.segment_index, **values)


def segment_values(task_id: str, segment: Segment) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(segment, name) for name in _SEGMENT_FIELDS}
    values.update(task_id=task_id, segment_index=segment.index, status=segment.status.value)
    return values


def insert_segments(session: Session, task_id: str, segments: Sequence[Segment]) -> None:
    """One executemany INSERT: a playlist of thousands of segments is planned in milliseconds."""
    if segments:
        session.execute(insert(SegmentRow), [segment_values(task_id, s) for s in segments])


def write_segments(session: Session, task_id: str, segments: Sequence[Segment]) -> None:
    """Insert or update segment rows in a few executemany statements, not a SELECT and UPDATE per row.

    A progress flush carries up to a second's worth of finished segments (hundreds on a fast link); done
    row by row through the unit of work it held the GIL long enough to slow the download it reports on.
    """
    if not segments:
        return
    indexes = sorted({s.index for s in segments})
    existing: set[int] = set()
    for start in range(0, len(indexes), _IN_CHUNK):
        chunk = indexes[start : start + _IN_CHUNK]
        query = select(SegmentRow.segment_index).where(
            SegmentRow.task_id == task_id, SegmentRow.segment_index.in_(chunk)
        )
        existing.update(session.scalars(query))
    rows = [segment_values(task_id, s) for s in segments]
    updates = [row for row in rows if row["segment_index"] in existing]
    inserts = [row for row in rows if row["segment_index"] not in existing]
    if updates:
        session.execute(update(SegmentRow), updates)
    if inserts:
        session.execute(insert(SegmentRow), inserts)


def delete_segment_rows(session: Session, task_id: str) -> None:
    session.execute(delete(SegmentRow).where(SegmentRow.task_id == task_id))


# Failures


def to_failure(row: FailureRow) -> Failure:
    values: dict[str, Any] = {name: getattr(row, name) for name in _FAILURE_FIELDS}
    values["status"] = FailureStatus(row.status)
    return Failure(id=row.id, task_id=row.task_id, **values)


def failure_row(session: Session, failure_id: str, user_id: str | None = None, *, lock: bool = False) -> FailureRow:
    query = select(FailureRow).where(FailureRow.id == failure_id)
    if user_id is not None:
        query = query.where(FailureRow.user_id == user_id)
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise failure_missing(failure_id)
    return row


def write_failure(row: FailureRow, failure: Failure) -> None:
    _copy(failure, row, _FAILURE_FIELDS)
    row.status = failure.status.value


# Videos


def to_video(row: VideoRow) -> Video:
    values: dict[str, Any] = {name: getattr(row, name) for name in _VIDEO_FIELDS}
    values["format"] = VideoFormat(row.format)
    return Video(id=row.id, task_id=row.task_id, **values)


def write_video(row: VideoRow, video: Video) -> None:
    _copy(video, row, _VIDEO_FIELDS)
    row.format = video.format.value


# Keyset pagination


def _sort_column(model: type[R], ordering: Ordering) -> InstrumentedAttribute[Any]:
    if ordering.field is SortField.UPDATE_TIME:
        if model is not TaskRow:
            raise ValueError(f"{model.__tablename__} cannot be ordered by update_time")
        return TaskRow.update_time
    column: InstrumentedAttribute[Any] = model.create_time
    return column


def page(
    session: Session,
    model: type[R],
    filters: Sequence[ColumnElement[bool]],
    ordering: Ordering,
    cursor: Cursor | None,
    limit: int,
) -> Page[R]:
    """Rows after `cursor` in `ordering`, at most `limit`, with the last row's cursor if more follow.

    Keyset, not offset: rows inserted before the cursor position never shift what the next page shows.
    """
    column = _sort_column(model, ordering)
    ident = model.id
    query = select(model).where(*filters)
    if cursor is not None:
        if ordering.descending:
            after = or_(column < cursor.time, and_(column == cursor.time, ident < cursor.id))
        else:
            after = or_(column > cursor.time, and_(column == cursor.time, ident > cursor.id))
        query = query.where(after)
    order = (column.desc(), ident.desc()) if ordering.descending else (column.asc(), ident.asc())
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    total = session.scalar(select(func.count()).select_from(model).where(*filters)) or 0
    has_more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if has_more and rows else None
    next_cursor = Cursor(time=getattr(last, column.key), id=last.id) if last is not None else None
    return Page(items=rows, next_cursor=next_cursor, total_size=int(total))
