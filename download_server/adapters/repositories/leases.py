"""SqlLeaseRepository: the lease columns of the tasks table, the claim query and the queue, in SQL.

domain/leases.py decides; this reads and writes what it decided. On PostgreSQL claims take rows with
FOR UPDATE SKIP LOCKED, so replicas never wait for each other's claims.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from download_server.adapters import rows
from download_server.adapters.orm import TaskRow
from download_server.domain import leases as decisions
from download_server.domain.leases import Claim, Lease, LeaseState, Queue, decode_targets, encode_targets
from download_server.domain.lifecycle import Action, TaskStatus
from download_server.domain.models import Task

PROCESSING, PENDING = TaskStatus.PROCESSING.value, TaskStatus.PENDING.value
_LEASE_COLUMNS = {"owner": "lease_owner", "token": "lease_token", "expires": "lease_expires", "command": "command"}


class SqlLeaseRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def write(self, row: TaskRow, task: Task, lease: Lease, before: tuple[Task, Lease]) -> None:
        """Only what a decision changed: on SQLite a progress flush may have written since the read."""
        before_task, before_lease = before
        for name in rows.TASK_FIELDS:
            if getattr(task, name) != getattr(before_task, name):
                rows.write_task(row, task, [name])
        values, old = _lease_values(lease), _lease_values(before_lease)
        for name, column in _LEASE_COLUMNS.items():
            if values[name] != old[name]:
                setattr(row, column, values[name])
        if lease.targets != before_lease.targets:
            row.run_targets = encode_targets(lease.targets)

    def claim(self, owner: str, limit: int, seconds: float, exclude: Collection[str], now: datetime) -> list[Claim]:
        conditions = [_runnable(now)]
        if exclude:
            conditions.append(TaskRow.id.not_in(list(exclude)))
        first = case((TaskRow.status == PROCESSING, 0), else_=1)
        query = (
            select(TaskRow)
            .where(*conditions)
            .order_by(first, func.coalesce(TaskRow.queued_time, TaskRow.update_time), TaskRow.id)
            .limit(limit)
        )
        if self._s.get_bind().dialect.name == "postgresql":
            # Rows another replica is claiming right now are skipped, not waited for.
            query = query.with_for_update(skip_locked=True)
        return [c for row in list(self._s.scalars(query)) if (c := self._take(row, owner, seconds, now)) is not None]

    def _take(self, row: TaskRow, owner: str, seconds: float, now: datetime) -> Claim | None:
        task, lease = rows.to_task(row), lease_of(row)
        resumed, previous, lapsed = row.status == PROCESSING, row.lease_owner, row.lease_token is not None
        decisions.claim(task, lease, now, owner, seconds)
        # Conditional on the row still being runnable: PostgreSQL has it locked already, but SQLite has
        # no row locks, and this keeps claims exclusive even for two processes on one SQLite file.
        taken = self._s.execute(
            update(TaskRow)
            .where(TaskRow.id == row.id, _runnable(now))
            .values(
                status=task.status.value,
                queued_time=task.queued_time,
                update_time=task.update_time,
                lease_owner=lease.owner,
                lease_token=lease.token,
                lease_expires=lease.expires,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) != 1 or lease.token is None:
            return None
        return Claim(task, lease.token, lease.targets, lease.command, resumed, previous, lapsed)

    def renew(self, held: Mapping[str, str], expires: datetime) -> dict[str, Action | None]:
        statement = (
            update(TaskRow)
            .where(TaskRow.id.in_(list(held)), TaskRow.lease_token.in_(list(held.values())))
            .values(lease_expires=expires)
            .returning(TaskRow.id, TaskRow.command)
            .execution_options(synchronize_session=False)
        )
        return {task_id: Action(command) if command else None for task_id, command in self._s.execute(statement)}

    def release(self, task_id: str, token: str) -> None:
        still_running = TaskRow.status == PROCESSING
        self._s.execute(
            update(TaskRow)
            .where(TaskRow.id == task_id, TaskRow.lease_token == token)
            .values(
                lease_token=None,
                lease_expires=None,
                # A stopped (handed back) run keeps what it was asked and what it was retrying for its next claim.
                command=case((still_running, TaskRow.command), else_=None),
                run_targets=case((still_running, TaskRow.run_targets), else_=None),
            )
            .execution_options(synchronize_session=False)
        )

    def inspect(self, task_id: str, now: datetime) -> LeaseState | None:
        row = self._s.get(TaskRow, task_id)
        if row is None:
            return None
        return LeaseState(TaskStatus(row.status), lease_of(row).live(now), row.lease_owner, row.lease_token)

    def queue(self, limit: int) -> Queue:
        head: list[TaskRow] = []
        if limit:
            head = list(self._s.scalars(select(TaskRow).where(_queued()).order_by(*_QUEUE_ORDER).limit(limit)))
        return Queue([rows.to_task(row) for row in head], self._count(_queued()))

    def position(self, task_id: str) -> tuple[int, int] | None:
        row = self._s.get(TaskRow, task_id)
        if row is None or row.status != PENDING or row.queued_time is None:
            return None
        ahead = or_(
            TaskRow.queued_time < row.queued_time, and_(TaskRow.queued_time == row.queued_time, TaskRow.id < row.id)
        )
        return self._count(_queued(), ahead) + 1, self._count(_queued())

    def runnable(self, now: datetime) -> int:
        return self._count(_runnable(now))

    def reset(self, owner: str | None) -> int:
        conditions: list[ColumnElement[bool]] = [TaskRow.lease_token.is_not(None)]
        if owner is not None:
            conditions.append(TaskRow.lease_owner == owner)
        statement = (
            update(TaskRow)
            .where(*conditions)
            .values(lease_token=None, lease_expires=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(self._s.execute(statement), "rowcount", 0) or 0)

    def _count(self, *conditions: ColumnElement[bool]) -> int:
        return int(self._s.scalar(select(func.count()).select_from(TaskRow).where(*conditions)) or 0)


_QUEUE_ORDER = (TaskRow.queued_time, TaskRow.id)


def _queued() -> ColumnElement[bool]:
    return and_(TaskRow.status == PENDING, TaskRow.queued_time.is_not(None), _not_deleting())


def _not_deleting() -> ColumnElement[bool]:
    return or_(TaskRow.command.is_(None), TaskRow.command != Action.DELETE.value)


def _runnable(now: datetime) -> ColumnElement[bool]:
    """domain.leases.runnable() in SQL: PROCESSING or queued, no live lease, not being deleted."""
    return and_(
        or_(TaskRow.status == PROCESSING, _queued()),
        or_(TaskRow.lease_token.is_(None), TaskRow.lease_expires <= now),
        _not_deleting(),
    )


def lease_of(row: TaskRow) -> Lease:
    return Lease(
        owner=row.lease_owner,
        token=row.lease_token,
        expires=row.lease_expires,
        command=Action(row.command) if row.command else None,
        targets=decode_targets(row.run_targets),
    )


def _lease_values(lease: Lease) -> dict[str, Any]:
    command = lease.command.value if lease.command else None
    return {"owner": lease.owner, "token": lease.token, "expires": lease.expires, "command": command}
