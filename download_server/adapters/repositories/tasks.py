"""SqlTaskRepository: task rows, scoped to their owner where a caller asks on a user's behalf."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from download_server.adapters import rows
from download_server.adapters.orm import FailureRow, SegmentRow, TaskRow, VideoRow
from download_server.adapters.paging import page
from download_server.domain.errors import task_missing
from download_server.domain.listing import Cursor, Page, TaskQuery
from download_server.domain.models import Task, TaskStatus

# Bound parameters per IN list: far below every backend's limit (SQLite's is 32766, older builds 999).
IN_CHUNK = 500


class SqlTaskRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def row(self, task_id: str, user_id: str | None = None, *, lock: bool = False) -> TaskRow:
        query = select(TaskRow).where(TaskRow.id == task_id)
        if user_id is not None:
            query = query.where(TaskRow.user_id == user_id)
        if lock:
            # Serialises read-modify-write against the engine on PostgreSQL; SQLite serialises writers anyway.
            query = query.with_for_update()
        found = self._s.scalars(query).one_or_none()
        if found is None:
            raise task_missing(task_id)
        return found

    def get(self, task_id: str, user_id: str | None = None, *, lock: bool = False) -> Task:
        return rows.to_task(self.row(task_id, user_id, lock=lock))

    def add(self, task: Task) -> None:
        row = self._s.get(TaskRow, task.id)
        if row is None:
            row = TaskRow(id=task.id)
            self._s.add(row)
        rows.write_task(row, task)

    def save(self, task: Task) -> None:
        rows.write_task(self.row(task.id), task)

    def save_counters(self, task: Task) -> None:
        rows.write_task(self.row(task.id), task, rows.COUNTER_FIELDS)

    def remove(self, task_id: str) -> None:
        # Explicitly, not only by FK cascade: SQLite enforces foreign keys only when asked to.
        for model in (SegmentRow, FailureRow, VideoRow):
            self._s.execute(delete(model).where(model.task_id == task_id))
        self._s.execute(delete(TaskRow).where(TaskRow.id == task_id))

    def with_status(self, statuses: Sequence[TaskStatus]) -> list[Task]:
        query = select(TaskRow).where(TaskRow.status.in_([s.value for s in statuses])).order_by(TaskRow.create_time)
        return [rows.to_task(row) for row in self._s.scalars(query)]

    def by_ids(self, task_ids: Sequence[str]) -> list[Task]:
        found: list[Task] = []
        for start in range(0, len(task_ids), IN_CHUNK):
            chunk = list(task_ids[start : start + IN_CHUNK])
            found += [rows.to_task(row) for row in self._s.scalars(select(TaskRow).where(TaskRow.id.in_(chunk)))]
        return found

    def stored_bytes(self, user_id: str) -> int:
        """What the user's tasks hold (their bytes_downloaded): the quota's measure, the same for every replica."""
        total = self._s.scalar(
            select(func.coalesce(func.sum(TaskRow.bytes_downloaded), 0)).where(TaskRow.user_id == user_id)
        )
        return int(total or 0)

    def of_user(self, user_id: str, statuses: Sequence[TaskStatus] = ()) -> list[Task]:
        query = select(TaskRow).where(TaskRow.user_id == user_id)
        if statuses:
            query = query.where(TaskRow.status.in_([status.value for status in statuses]))
        return [rows.to_task(row) for row in self._s.scalars(query.order_by(TaskRow.create_time, TaskRow.id))]

    def page(self, query: TaskQuery, cursor: Cursor | None, limit: int) -> Page[Task]:
        filters = [TaskRow.user_id == query.user_id]
        if query.statuses:
            filters.append(TaskRow.status.in_([status.value for status in query.statuses]))
        found = page(self._s, TaskRow, filters, query.ordering, cursor, limit)
        return Page([rows.to_task(row) for row in found.items], found.next_cursor, found.total_size)
