"""MemoryLeases: the Leases port for the engine tests' FakeTaskStore (one process, no SQL).

A lock and a dict stand in for row locks and lease columns; the scheduler runs the same decisions
(domain/leases.py) over it as over adapters.leases.SqlLeases."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import TypeVar

from download_server.domain.leases import (
    Claim,
    Decision,
    Lease,
    LeaseState,
    Outcome,
    Queue,
    claim,
    claim_order,
    fair_pick,
    queued,
    runnable,
)
from download_server.domain.lifecycle import Action
from download_server.domain.models import Task, TaskStatus, utcnow
from download_server.domain.ports import DeletedTask
from download_server.engine.run.state import save_state
from mediadl_common.errors import NotFound
from tests.download.engine.fakes import FakeTaskStore

T = TypeVar("T")


class MemoryLeases:
    shared = False

    def __init__(self, store: FakeTaskStore, clock: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self._clock = clock
        self._leases: dict[str, Lease] = {}
        self._turn = asyncio.Lock()

    async def act(self, task_id: str, decide: Callable[[Task, Lease, datetime], T]) -> T:
        async with self._turn:
            task = await self._store.get_task(task_id)
            before = dataclasses.replace(task)
            lease = dataclasses.replace(self._leases.get(task_id) or Lease())
            lease.user_running = await self._running_of(task.user_id, besides=task.id)
            result = decide(task, lease, self._clock())
            if task != before:
                await save_state(self._store, task)
            self._leases[task_id] = lease
            return result

    async def remove(
        self, task_id: str, user_id: str, decide: Callable[[Task, Lease, datetime], Decision]
    ) -> tuple[Decision, DeletedTask | None]:
        async with self._turn:
            task = await self._store.get_task(task_id, user_id)
            lease = dataclasses.replace(self._leases.get(task_id) or Lease())
            decision = decide(task, lease, self._clock())
            self._leases[task_id] = lease
            if decision.outcome is not Outcome.REMOVE:
                return decision, None
            del self._leases[task_id]
            return decision, DeletedTask(decision.task, self._store.remove_task(task_id))

    async def claim(
        self, owner: str, limit: int, seconds: float, exclude: Collection[str], per_user: int = 0
    ) -> list[Claim]:
        async with self._turn:
            now = self._clock()
            tasks = await self._store.tasks_with_status([TaskStatus.PROCESSING, TaskStatus.PENDING])
            found = [t for t in tasks if t.id not in exclude and runnable(t, self._leases.get(t.id), now)]
            running = {t.user_id: await self._running_of(t.user_id) for t in found}
            found_claims: list[Claim] = []
            for task in fair_pick(sorted(found, key=claim_order), running, per_user, limit):
                lease = self._leases.setdefault(task.id, Lease())
                previous, lapsed, resumed = lease.owner, lease.token is not None, task.status is TaskStatus.PROCESSING
                claim(task, lease, now, owner, seconds)
                await save_state(self._store, task)
                assert lease.token is not None
                found_claims.append(Claim(task, lease.token, lease.targets, lease.command, resumed, previous, lapsed))
            return found_claims

    async def renew(self, held: Mapping[str, str], seconds: float) -> dict[str, Action | None]:
        async with self._turn:
            now = self._clock()
            answer: dict[str, Action | None] = {}
            for task_id, token in held.items():
                lease = self._leases.get(task_id)
                if lease is not None and lease.token == token:
                    lease.expires = now + timedelta(seconds=seconds)
                    answer[task_id] = lease.command
            return answer

    async def release(self, task_id: str, token: str) -> None:
        async with self._turn:
            lease = self._leases.get(task_id)
            if lease is None or lease.token != token:
                return
            lease.token = lease.expires = None
            try:
                status = (await self._store.get_task(task_id)).status
            except NotFound:
                del self._leases[task_id]
                return
            if status is not TaskStatus.PROCESSING:
                lease.command = lease.targets = None

    async def inspect(self, task_id: str) -> LeaseState | None:
        try:
            task = await self._store.get_task(task_id)
        except NotFound:
            return None
        lease = self._leases.get(task_id) or Lease()
        return LeaseState(task.status, lease.live(self._clock()), lease.owner, lease.token)

    async def queue(self, limit: int, per_user: int = 0) -> Queue:
        waiting = await self._waiting()
        users = {t.user_id for t in waiting[:limit]}
        busy = {u for u in users if per_user > 0 and await self._running_of(u) >= per_user}
        return Queue(waiting[:limit], len(waiting), frozenset(busy))

    async def _running_of(self, user_id: str, besides: str | None = None) -> int:
        now = self._clock()
        tasks = await self._store.tasks_with_status([TaskStatus.PROCESSING])
        return sum(
            1
            for t in tasks
            if t.user_id == user_id and t.id != besides and (lease := self._leases.get(t.id)) and lease.live(now)
        )

    async def position(self, task_id: str) -> tuple[int, int] | None:
        waiting = await self._waiting()
        ids = [t.id for t in waiting]
        return (ids.index(task_id) + 1, len(ids)) if task_id in ids else None

    async def runnable(self) -> int:
        now = self._clock()
        tasks = await self._store.tasks_with_status([TaskStatus.PROCESSING, TaskStatus.PENDING])
        return sum(runnable(t, self._leases.get(t.id), now) for t in tasks)

    async def reset(self, owner: str | None) -> int:
        async with self._turn:
            ended = 0
            for lease in self._leases.values():
                if lease.token is not None and (owner is None or lease.owner == owner):
                    lease.token = lease.expires = None
                    ended += 1
            return ended

    async def _waiting(self) -> list[Task]:
        tasks = await self._store.tasks_with_status([TaskStatus.PENDING])
        deleting = {i for i, lease in self._leases.items() if lease.command is Action.DELETE}
        return sorted((t for t in tasks if queued(t) and t.id not in deleting), key=claim_order)
