"""SqlSegmentRepository: one row per segment of a task, written in a few executemany statements."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from download_server.adapters import rows
from download_server.adapters.orm import SegmentRow
from download_server.adapters.repositories.tasks import IN_CHUNK
from download_server.domain.models import Segment, SegmentStatus
from mediadl_common.errors import AlreadyExists


class SqlSegmentRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def of_task(self, task_id: str) -> list[Segment]:
        query = select(SegmentRow).where(SegmentRow.task_id == task_id).order_by(SegmentRow.segment_index)
        return [rows.to_segment(row) for row in self._s.scalars(query)]

    def pending(self, task_id: str, after_index: int, limit: int) -> list[Segment]:
        """A slice of the task's PENDING rows after an index (the primary key's order: an index range scan)."""
        query = (
            select(SegmentRow)
            .where(
                SegmentRow.task_id == task_id,
                SegmentRow.segment_index > after_index,
                SegmentRow.status == SegmentStatus.PENDING.value,
            )
            .order_by(SegmentRow.segment_index)
            .limit(limit)
        )
        return [rows.to_segment(row) for row in self._s.scalars(query)]

    def add(self, task_id: str, segments: Sequence[Segment]) -> None:
        """One executemany INSERT: a playlist of thousands of segments is planned in milliseconds."""
        if not segments:
            return
        try:
            self._s.execute(insert(SegmentRow), [rows.segment_values(task_id, s) for s in segments])
        except IntegrityError:  # the transaction is lost anyway: raising rolls it back
            raise AlreadyExists(f"task {task_id} already has a segment with one of these indexes") from None

    def save(self, task_id: str, segments: Sequence[Segment]) -> None:
        """Insert or update segment rows in a few executemany statements, not a SELECT and UPDATE per row.

        A progress flush carries up to a second's worth of finished segments (hundreds on a fast link); done
        row by row through the ORM it held the GIL long enough to slow the download it reports on.
        """
        if not segments:
            return
        indexes = sorted({s.index for s in segments})
        existing: set[int] = set()
        for start in range(0, len(indexes), IN_CHUNK):
            chunk = indexes[start : start + IN_CHUNK]
            query = select(SegmentRow.segment_index).where(
                SegmentRow.task_id == task_id, SegmentRow.segment_index.in_(chunk)
            )
            existing.update(self._s.scalars(query))
        values = [rows.segment_values(task_id, s) for s in segments]
        updates = [row for row in values if row["segment_index"] in existing]
        inserts = [row for row in values if row["segment_index"] not in existing]
        if updates:
            self._s.execute(update(SegmentRow), updates)
        if inserts:
            self._s.execute(insert(SegmentRow), inserts)

    def remove_all(self, task_id: str) -> None:
        self._s.execute(delete(SegmentRow).where(SegmentRow.task_id == task_id))
