"""SqlLeases: task leases in the tasks table. On PostgreSQL, claims take rows with FOR UPDATE SKIP LOCKED and
times come from the database clock, so replicas on several hosts agree; on SQLite (one process) the same
statements run in turn behind a lock of this process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from download_server.adapters import repository as repo
from download_server.adapters.orm import TaskRow
from download_server.domain.models import Task, TaskStatus, utcnow
from download_server.engine.claims import (
    Claim,
    Command,
    Lease,
    LeaseState,
    Queue,
    decode_targets,
    encode_targets,
)
from mediadl_common.db import Database

T = TypeVar("T")
PROCESSING, PENDING = TaskStatus.PROCESSING.value, TaskStatus.PENDING.value
_LEASE_COLUMNS = {"owner": "lease_owner", "token": "lease_token", "expires": "lease_expires", "command": "command"}


class SqlLeases:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._postgres = db.engine.dialect.name == "postgresql"
        # SQLite has no row locks and a read-then-write is not atomic across pool threads; one process uses it,
        # so its lease operations simply take turns.
        self._turn = None if self._postgres else asyncio.Lock()

    @property
    def shared(self) -> bool:
        return self._postgres

    async def act(self, task_id: str, decide: Callable[[Task, Lease, datetime], T]) -> T:
        def work(s: Session) -> T:
            row = repo.task_row(s, task_id, lock=True)
            task, lease = repo.to_task(row), lease_of(row)
            before_task, before_lease = repo.to_task(row), lease_of(row)
            result = decide(task, lease, self._now(s))
            # Only what the decision changed: on SQLite a progress flush may have written since the read.
            for name in repo.TASK_FIELDS:
                if getattr(task, name) != getattr(before_task, name):
                    repo.write_task(row, task, [name])
            write_lease(row, lease, before_lease)
            return result

        return await self._run(work)

    async def claim(self, owner: str, limit: int, seconds: float, exclude: Collection[str]) -> list[Claim]:
        def work(s: Session) -> list[Claim]:
            now = self._now(s)
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
            if self._postgres:
                # Rows another replica is claiming right now are skipped, not waited for.
                query = query.with_for_update(skip_locked=True)
            claims = []
            for row in list(s.scalars(query)):
                lease = lease_of(row)
                resumed, previous, lapsed = row.status == PROCESSING, row.lease_owner, row.lease_token is not None
                lease.grant(owner, now, seconds)
                # Conditional on the row still being runnable: PostgreSQL has it locked already, but SQLite has
                # no row locks, and this keeps claims exclusive even for two processes on one SQLite file.
                taken = s.execute(
                    update(TaskRow)
                    .where(TaskRow.id == row.id, _runnable(now))
                    .values(
                        status=PROCESSING,
                        queued_time=None,
                        update_time=now,
                        lease_owner=lease.owner,
                        lease_token=lease.token,
                        lease_expires=lease.expires,
                    )
                    .execution_options(synchronize_session=False)
                )
                if getattr(taken, "rowcount", 0) != 1:
                    continue
                task = replace(repo.to_task(row), status=TaskStatus.PROCESSING, queued_time=None, update_time=now)
                assert lease.token is not None
                claims.append(Claim(task, lease.token, lease.targets, lease.command, resumed, previous, lapsed))
            return claims

        return await self._run(work)

    async def renew(self, held: Mapping[str, str], seconds: float) -> dict[str, Command | None]:
        def work(s: Session) -> dict[str, Command | None]:
            expires = self._now(s) + timedelta(seconds=seconds)
            statement = (
                update(TaskRow)
                .where(TaskRow.id.in_(list(held)), TaskRow.lease_token.in_(list(held.values())))
                .values(lease_expires=expires)
                .returning(TaskRow.id, TaskRow.command)
                .execution_options(synchronize_session=False)
            )
            return {task_id: Command(command) if command else None for task_id, command in s.execute(statement)}

        return await self._run(work) if held else {}

    async def release(self, task_id: str, token: str) -> None:
        still_running = TaskRow.status == PROCESSING
        statement = (
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
        await self._run(lambda s: s.execute(statement))

    async def inspect(self, task_id: str) -> LeaseState | None:
        def work(s: Session) -> LeaseState | None:
            row = s.get(TaskRow, task_id)
            if row is None:
                return None
            return LeaseState(
                TaskStatus(row.status), lease_of(row).live(self._now(s)), row.lease_owner, row.lease_token
            )

        return await self._run(work)

    async def queue(self, limit: int) -> Queue:
        def work(s: Session) -> Queue:
            head: list[TaskRow] = []
            if limit:
                head = list(s.scalars(select(TaskRow).where(_queued()).order_by(*_QUEUE_ORDER).limit(limit)))
            total = s.scalar(select(func.count()).select_from(TaskRow).where(_queued())) or 0
            return Queue([repo.to_task(row) for row in head], int(total))

        return await self._run(work)

    async def position(self, task_id: str) -> tuple[int, int] | None:
        def work(s: Session) -> tuple[int, int] | None:
            row = s.get(TaskRow, task_id)
            if row is None or row.status != PENDING or row.queued_time is None:
                return None
            ahead = or_(
                TaskRow.queued_time < row.queued_time, and_(TaskRow.queued_time == row.queued_time, TaskRow.id < row.id)
            )
            before = s.scalar(select(func.count()).select_from(TaskRow).where(_queued(), ahead)) or 0
            total = s.scalar(select(func.count()).select_from(TaskRow).where(_queued())) or 0
            return int(before) + 1, int(total)

        return await self._run(work)

    async def runnable(self) -> int:
        def work(s: Session) -> int:
            return int(s.scalar(select(func.count()).select_from(TaskRow).where(_runnable(self._now(s)))) or 0)

        return await self._run(work)

    async def reset(self, owner: str | None) -> int:
        conditions: list[ColumnElement[bool]] = [TaskRow.lease_token.is_not(None)]
        if owner is not None:
            conditions.append(TaskRow.lease_owner == owner)
        statement = (
            update(TaskRow)
            .where(*conditions)
            .values(lease_token=None, lease_expires=None)
            .execution_options(synchronize_session=False)
        )
        return await self._run(lambda s: int(getattr(s.execute(statement), "rowcount", 0) or 0))

    # Internals
    def _now(self, s: Session) -> datetime:
        # The database's clock on PostgreSQL: replicas on several hosts compare leases against one clock.
        if self._postgres:
            value = s.scalar(select(func.now()))
            assert isinstance(value, datetime)
            return value
        return utcnow()

    async def _run(self, work: Callable[[Session], T]) -> T:
        async with self._taking_turns():
            return await self._db.run(self._transaction, work)

    def _transaction(self, work: Callable[[Session], T]) -> T:
        with self._db.session_factory.begin() as session:
            return work(session)

    @asynccontextmanager
    async def _taking_turns(self) -> AsyncIterator[None]:
        if self._turn is None:
            yield
        else:
            async with self._turn:
                yield


_QUEUE_ORDER = (TaskRow.queued_time, TaskRow.id)


def _queued() -> ColumnElement[bool]:
    return and_(TaskRow.status == PENDING, TaskRow.queued_time.is_not(None), _not_deleting())


def _not_deleting() -> ColumnElement[bool]:
    return or_(TaskRow.command.is_(None), TaskRow.command != Command.DELETE.value)


def _runnable(now: datetime) -> ColumnElement[bool]:
    """engine.claims.runnable() in SQL: PROCESSING or queued, no live lease, not being deleted."""
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
        command=Command(row.command) if row.command else None,
        targets=decode_targets(row.run_targets),
    )


def write_lease(row: TaskRow, lease: Lease, before: Lease) -> None:
    values: dict[str, Any] = {"owner": lease.owner, "token": lease.token, "expires": lease.expires}
    values["command"] = lease.command.value if lease.command else None
    old: dict[str, Any] = {"owner": before.owner, "token": before.token, "expires": before.expires}
    old["command"] = before.command.value if before.command else None
    for name, column in _LEASE_COLUMNS.items():
        if values[name] != old[name]:
            setattr(row, column, values[name])
    if lease.targets != before.targets:
        row.run_targets = encode_targets(lease.targets)
