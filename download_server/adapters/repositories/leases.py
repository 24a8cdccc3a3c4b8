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

    def claim(
        self, owner: str, limit: int, seconds: float, exclude: Collection[str], now: datetime, per_user: int = 0
    ) -> list[Claim]:
        self.take_turns()
        conditions = [_runnable(now)]
        if exclude:
            conditions.append(TaskRow.id.not_in(list(exclude)))
        order = (_FIRST, func.coalesce(TaskRow.queued_time, TaskRow.update_time), TaskRow.id)
        # Each user's first `per_user` runnable tasks are the candidates (a user with 10,000 queued costs no more).
        place = func.row_number().over(partition_by=TaskRow.user_id, order_by=order).label("place")
        ranked = select(TaskRow.id, place).where(*conditions).subquery()
        wanted = select(ranked.c.id)
        if per_user > 0:
            wanted = wanted.where(ranked.c.place <= per_user)
        else:
            wanted = wanted.where(ranked.c.place <= limit)
        candidates = [rows.to_task(row) for row in self._s.scalars(select(TaskRow).where(TaskRow.id.in_(wanted)))]
        users = {task.user_id for task in candidates}
        running = {user: self.running_of(user, now) for user in users} if per_user > 0 else {}
        chosen = decisions.fair_pick(sorted(candidates, key=decisions.claim_order), running, per_user, limit)
        if not chosen:
            return []
        query = select(TaskRow).where(TaskRow.id.in_([task.id for task in chosen]))
        if self._postgres():
            # Rows another transaction holds (a StartTask deciding) are skipped, not waited for.
            query = query.with_for_update(skip_locked=True)
        by_id = {row.id: row for row in self._s.scalars(query)}
        taken = (self._take(by_id[task.id], owner, seconds, now) for task in chosen if task.id in by_id)
        return [claim for claim in taken if claim is not None]

    def take_turns(self) -> None:
        """PostgreSQL: claims and decisions of every replica take turns (a transaction-scoped advisory lock),
        so the per-user cap holds across replicas. SQLite: one process, already in turn."""
        if self._postgres():
            self._s.execute(select(func.pg_advisory_xact_lock(_CLAIM_LOCK)))

    def running_of(self, user_id: str, now: datetime, *, besides: str | None = None) -> int:
        """How many of the user's tasks run now (PROCESSING under a live lease)."""
        conditions = [TaskRow.user_id == user_id, _running(now)]
        if besides is not None:
            conditions.append(TaskRow.id != besides)
        return self._count(*conditions)

    def _postgres(self) -> bool:
        return self._s.get_bind().dialect.name == "postgresql"

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
                reclaims=task.reclaims,
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

    def queue(self, limit: int, per_user: int = 0, now: datetime | None = None) -> Queue:
        head: list[TaskRow] = []
        if limit:
            head = list(self._s.scalars(select(TaskRow).where(_queued()).order_by(*_QUEUE_ORDER).limit(limit)))
        busy: set[str] = set()
        if per_user > 0 and now is not None:
            busy = {u for u in {row.user_id for row in head} if self.running_of(u, now) >= per_user}
        return Queue([rows.to_task(row) for row in head], self._count(_queued()), frozenset(busy))

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
_FIRST = case((TaskRow.status == PROCESSING, 0), else_=1)  # interrupted runs before the queue
_CLAIM_LOCK = 0x6D6564_6C  # "medl": the advisory lock key claims and lease decisions share


def _running(now: datetime) -> ColumnElement[bool]:
    return and_(TaskRow.status == PROCESSING, TaskRow.lease_token.is_not(None), TaskRow.lease_expires > now)


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
