"""SqlFailureRepository: failure records, scoped to their owner where a caller asks on a user's behalf."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from download_server.adapters import rows
from download_server.adapters.orm import FailureRow, TaskRow
from download_server.adapters.paging import page
from download_server.domain.errors import failure_missing, task_missing
from download_server.domain.listing import Cursor, FailureQuery, Ordering, Page
from download_server.domain.models import Failure, FailureStatus

OPEN = (FailureStatus.PENDING.value, FailureStatus.RETRYING.value)


class SqlFailureRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def _row(self, failure_id: str, user_id: str | None = None, *, lock: bool = False) -> FailureRow:
        query = select(FailureRow).where(FailureRow.id == failure_id)
        if user_id is not None:
            query = query.where(FailureRow.user_id == user_id)
        if lock:
            query = query.with_for_update()
        row = self._s.scalars(query).one_or_none()
        if row is None:
            raise failure_missing(failure_id)
        return row

    def get(self, failure_id: str, user_id: str | None = None, *, lock: bool = False) -> Failure:
        return rows.to_failure(self._row(failure_id, user_id, lock=lock))

    def add(self, failure: Failure) -> Failure:
        owner = self._s.scalar(select(TaskRow.user_id).where(TaskRow.id == failure.task_id))
        if owner is None:
            raise task_missing(failure.task_id)
        row = FailureRow(id=failure.id, task_id=failure.task_id, user_id=owner)
        rows.write_failure(row, failure)
        self._s.add(row)
        return failure

    def save(self, failure: Failure) -> None:
        rows.write_failure(self._row(failure.id), failure)

    def of_task(self, task_id: str, statuses: Sequence[FailureStatus] = ()) -> list[Failure]:
        query = select(FailureRow).where(FailureRow.task_id == task_id)
        if statuses:
            query = query.where(FailureRow.status.in_([status.value for status in statuses]))
        return [rows.to_failure(row) for row in self._s.scalars(query.order_by(FailureRow.create_time, FailureRow.id))]

    def abandon_open(self, task_id: str, when: datetime) -> None:
        self._s.execute(
            update(FailureRow)
            .where(FailureRow.task_id == task_id, FailureRow.status.in_(OPEN))
            .values(status=FailureStatus.ABANDONED.value, update_time=when)
        )

    def page(self, query: FailureQuery, cursor: Cursor | None, limit: int) -> Page[Failure]:
        filters = [FailureRow.user_id == query.user_id]
        if query.task_id is not None:
            filters.append(FailureRow.task_id == query.task_id)
        if query.statuses:
            filters.append(FailureRow.status.in_([status.value for status in query.statuses]))
        found = page(self._s, FailureRow, filters, Ordering(), cursor, limit)
        return Page([rows.to_failure(row) for row in found.items], found.next_cursor, found.total_size)
