"""SqlLeases: the Leases port over the unit of work. Times come from the database clock on PostgreSQL, so
replicas on several hosts agree; on SQLite (one process) the operations take turns behind a lock of this
process, as SQLite has no row locks and a read-then-write is not atomic across pool threads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import TypeVar

from download_server.adapters import rows
from download_server.adapters.repositories.leases import lease_of
from download_server.adapters.unit_of_work import SqlTransactions, SqlUnitOfWork
from download_server.domain.leases import Claim, Decision, Lease, LeaseState, Outcome, Queue
from download_server.domain.lifecycle import Action
from download_server.domain.models import Task
from download_server.domain.ports import DeletedTask

T = TypeVar("T")


class SqlLeases:
    def __init__(self, transactions: SqlTransactions) -> None:
        self._tx = transactions
        self._turn = None if transactions.postgres else asyncio.Lock()

    @property
    def shared(self) -> bool:
        return self._tx.postgres

    async def act(self, task_id: str, decide: Callable[[Task, Lease, datetime], T]) -> T:
        return await self._run(lambda uow: _decide(uow, task_id, None, decide, may_take=True))

    async def remove(
        self, task_id: str, user_id: str, decide: Callable[[Task, Lease, datetime], Decision]
    ) -> tuple[Decision, DeletedTask | None]:
        def work(uow: SqlUnitOfWork) -> tuple[Decision, DeletedTask | None]:
            decision = _decide(uow, task_id, user_id, decide)
            if decision.outcome is not Outcome.REMOVE:
                return decision, None
            video = uow.videos.of_task(task_id)
            uow.tasks.remove(task_id)
            return decision, DeletedTask(decision.task, video)

        return await self._run(work)

    async def claim(
        self, owner: str, limit: int, seconds: float, exclude: Collection[str], per_user: int = 0
    ) -> list[Claim]:
        return await self._run(lambda uow: uow.leases.claim(owner, limit, seconds, exclude, uow.now(), per_user))

    async def renew(self, held: Mapping[str, str], seconds: float) -> dict[str, Action | None]:
        if not held:
            return {}
        return await self._run(lambda uow: uow.leases.renew(held, uow.now() + timedelta(seconds=seconds)))

    async def release(self, task_id: str, token: str) -> None:
        await self._run(lambda uow: uow.leases.release(task_id, token))

    async def inspect(self, task_id: str) -> LeaseState | None:
        return await self._run(lambda uow: uow.leases.inspect(task_id, uow.now()))

    async def queue(self, limit: int, per_user: int = 0) -> Queue:
        return await self._run(lambda uow: uow.leases.queue(limit, per_user, uow.now()))

    async def position(self, task_id: str) -> tuple[int, int] | None:
        return await self._run(lambda uow: uow.leases.position(task_id))

    async def runnable(self) -> int:
        return await self._run(lambda uow: uow.leases.runnable(uow.now()))

    async def reset(self, owner: str | None) -> int:
        return await self._run(lambda uow: uow.leases.reset(owner))

    async def _run(self, work: Callable[[SqlUnitOfWork], T]) -> T:
        async with self._taking_turns():
            return await self._tx.run_sql(work)

    @asynccontextmanager
    async def _taking_turns(self) -> AsyncIterator[None]:
        if self._turn is None:
            yield
        else:
            async with self._turn:
                yield


def _decide(
    uow: SqlUnitOfWork,
    task_id: str,
    user_id: str | None,
    decide: Callable[[Task, Lease, datetime], T],
    *,
    may_take: bool = False,
) -> T:
    """Lock the task's row (scoped to `user_id` if given), let `decide` change task and lease, write both.

    A decision that `may_take` the task (start, resume, retry here) takes turns with every claim first, and
    learns how many tasks the user runs: the per-user cap holds across replicas."""
    if may_take:
        uow.leases.take_turns()  # before the row lock, in the same order as every claim: no deadlock
    row = uow.tasks.row(task_id, user_id, lock=True)
    task, lease = rows.to_task(row), lease_of(row)
    before = (rows.to_task(row), lease_of(row))
    now = uow.now()
    if may_take:
        lease.user_running = uow.leases.running_of(row.user_id, now, besides=row.id)
    result = decide(task, lease, now)
    uow.leases.write(row, task, lease, before)
    return result
