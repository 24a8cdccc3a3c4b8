"""Scheduler: owns the server's downloads. At most max_active_tasks run; the rest wait in order, PENDING.

Every action takes the task's lock, checks the transition, persists the new state and publishes it
before returning; a task never has two runs. Streams only subscribe to the broker: closing one never
touches a download.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.abc import AbstractResolver

from download_server.adapters.storage import Storage
from download_server.domain.models import Failure, Task, TaskEvent, TaskStatus, require_transition, utcnow
from download_server.domain.ports import TaskStore
from download_server.engine.fetch import Fetcher
from download_server.engine.guard import PolicyGuard, UrlGuard
from download_server.engine.metrics import EngineMetrics, NoMetrics
from download_server.engine.progress import ProgressBroker, watch_task, watch_user
from download_server.engine.run import OPEN, Services
from download_server.engine.runner import Runner, Stop, queued_event, save_state
from download_server.engine.settings import EngineSettings
from download_server.engine.url_policy import Resolver
from mediadl_common.errors import FailedPrecondition, NotFound

log = logging.getLogger(__name__)
_DONE = {"pause": "paused", "cancel": "cancelled"}


def create_scheduler(
    store: TaskStore,
    settings: EngineSettings,
    *,
    resolve: Resolver | None = None,
    resolver: AbstractResolver | None = None,
    guard: UrlGuard | None = None,
    metrics: EngineMetrics | None = None,
) -> Scheduler:
    """The engine as the composition root wires it: one fetcher (one aiohttp session), one broker.

    `resolve` is url_policy's name lookup for the policy check and `resolver` aiohttp's for connections
    (both default to the system resolver; tests inject fixed answers). `guard` replaces the policy guard
    built from those (tests only). Call `await scheduler.recover()` once the server is up and
    `await scheduler.close()` at shutdown (it closes the HTTP session).
    """
    guard = guard or PolicyGuard(allow_private=settings.allow_private_networks, resolve=resolve)
    metrics = metrics or NoMetrics()
    fetcher = Fetcher(
        settings.fetch, guard, resolver=resolver, on_retry=lambda e: metrics.fetch_retried(e.error_type.value)
    )
    services = Services(store, Storage(settings.storage_dir), fetcher, settings, metrics)
    return Scheduler(services, ProgressBroker())


class Scheduler:
    def __init__(self, services: Services, broker: ProgressBroker) -> None:
        self.services = services
        self.broker = broker
        self._store = services.store
        self._slots = services.settings.max_active_tasks
        self._runs: dict[str, Runner] = {}
        self._queue: deque[tuple[Task, frozenset[int] | None, str]] = deque()
        self._reserved = 0  # slots promised to tasks whose start is being persisted
        self._locks: dict[str, _Held] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._closing = False

    # The actions of the API (same names as the services' Scheduler port).
    async def start(self, task_id: str) -> None:
        """PENDING or CANCELLED -> PROCESSING (or queued). Already running or queued: nothing to do."""
        async with self._lock(task_id):
            if self.is_active(task_id):
                return
            task = await self._store.get_task(task_id)
            if task.status is not TaskStatus.PROCESSING:  # PROCESSING but idle here: left by a crash
                task.transition("start", TaskStatus.PROCESSING)
            await self._admit(task, None, "started")

    async def resume(self, task_id: str) -> None:
        async with self._lock(task_id):
            task = await self._store.get_task(task_id)
            task.transition("resume", TaskStatus.PROCESSING)
            await self._admit(task, None, "resumed; finished segments are not fetched again")

    async def pause(self, task_id: str) -> None:
        await self._stop_or_transition(task_id, Stop.PAUSE, "pause", TaskStatus.PAUSED)

    async def cancel(self, task_id: str) -> None:
        await self._stop_or_transition(task_id, Stop.CANCEL, "cancel", TaskStatus.CANCELLED)

    async def delete(self, task_id: str) -> None:
        """Stop whatever runs or waits for the task (its rows and files are about to go)."""
        async with self._lock(task_id):
            queued = self._unqueue(task_id)
            run = self._runs.get(task_id)
            if run is not None:
                run.stop(Stop.DELETE)
                await run.done.wait()
            task = queued or (run.task if run is not None else None)
            if task is not None:
                task.status = TaskStatus.CANCELLED  # ends every stream watching it
                self.broker.publish(TaskEvent.of(task, message="deleted"))

    async def retry(self, task_id: str) -> None:
        """FAILED or PARTIAL_COMPLETED: fetch again exactly what the open failure records name."""
        async with self._lock(task_id):
            task = await self._store.get_task(task_id)
            require_transition("retry", task.status)
            failures = await self._store.task_failures(task_id, OPEN)
            if not failures:
                raise FailedPrecondition(
                    "nothing to retry: every failure is resolved or abandoned", reason="TASK_STATE"
                )
            task.transition("retry", TaskStatus.PROCESSING)
            targets = frozenset(f.segment_index for f in failures)
            await self._admit(task, targets, f"retrying {len(targets)} failed part(s)")

    async def retry_failure(self, failure_id: str) -> Failure:
        """Fetch one failed segment now (not queued) and return its record after the attempt."""
        failure = await self._store.get_failure(failure_id)
        async with self._lock(failure.task_id):
            failure = await self._store.get_failure(failure_id)
            if not failure.status.is_open:
                raise FailedPrecondition(f"the failure is {failure.status.value}: only open failures can be retried")
            if self.is_active(failure.task_id):
                raise FailedPrecondition("the task is downloading: retry after it stops", reason="TASK_STATE")
            task = await self._store.get_task(failure.task_id)
            require_transition("retry", task.status)
            task.status, task.update_time = TaskStatus.PROCESSING, utcnow()
            await save_state(self._store, task)
            run = self._launch(task, frozenset({failure.segment_index}), "retrying one failed part")
        await run.done.wait()
        return await self._store.get_failure(failure_id)

    async def recover(self) -> list[str]:
        """At start-up: resume every task a previous process left PROCESSING, from its persisted segments,
        then queue again, in their original order, the started tasks that were waiting for a slot."""
        running = await self._store.tasks_with_status([TaskStatus.PROCESSING])
        waiting = [t for t in await self._store.tasks_with_status([TaskStatus.PENDING]) if t.queued_time is not None]
        waiting.sort(key=lambda t: (t.queued_time or t.create_time, t.id))
        recovered = []
        for task, note in [
            *((t, "resumed after a restart") for t in running),
            *((t, "started before a restart; queued again") for t in waiting),
        ]:
            async with self._lock(task.id):
                if not self.is_active(task.id):
                    await self._admit(task, None, note)
                    recovered.append(task.id)
        if recovered:
            log.info("recovering %d interrupted or queued download(s)", len(recovered))
        return recovered

    async def close(self) -> None:
        """Stop every run, leaving them PROCESSING (recover() picks them up), then close the HTTP session."""
        self._closing = True
        self._queue.clear()
        runs = list(self._runs.values())
        for run in runs:
            run.stop(Stop.SHUTDOWN)
        await asyncio.gather(*(run.done.wait() for run in runs))
        for pending in list(self._background):
            pending.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.services.fetcher.close()

    # Queries for the API layer
    def is_active(self, task_id: str) -> bool:
        return task_id in self._runs or any(t.id == task_id for t, _, _ in self._queue)

    def watch(self, task_id: str, load: Callable[[], Awaitable[Task]]) -> AsyncGenerator[TaskEvent, None]:
        return watch_task(self.broker, task_id, load)

    def watch_user(
        self, user_id: str, load: Callable[[], Awaitable[list[Task]]], statuses: Iterable[TaskStatus] = ()
    ) -> AsyncGenerator[TaskEvent, None]:
        return watch_user(self.broker, user_id, load, statuses)

    def running_count(self) -> int:
        return len(self._runs)

    def queued_count(self) -> int:
        return len(self._queue)

    # Internals
    async def _stop_or_transition(self, task_id: str, stop: Stop, action: str, target: TaskStatus) -> None:
        async with self._lock(task_id):
            run = self._runs.get(task_id)
            if run is not None:
                require_transition(action, run.task.status)
                run.stop(stop)
                await run.done.wait()
                if run.task.status is not target:  # it finished on its own first
                    require_transition(action, run.task.status)
                return
            task = self._unqueue(task_id) if action == "cancel" else None
            task = task or await self._store.get_task(task_id)
            task.transition(action, target)
            await save_state(self._store, task)
            self.broker.publish(TaskEvent.of(task, message=_DONE[action]))
            self._publish_queue()

    async def _admit(self, task: Task, targets: frozenset[int] | None, note: str) -> None:
        """Run now if a slot is free, else queue as PENDING. The caller holds the task's lock."""
        if self._closing:
            raise FailedPrecondition("the server is shutting down", reason="SHUTTING_DOWN")
        if len(self._runs) + self._reserved < self._slots:
            self._reserved += 1
            try:
                task.status, task.update_time, task.queued_time = TaskStatus.PROCESSING, utcnow(), None
                await save_state(self._store, task)
            finally:
                self._reserved -= 1
            self._launch(task, targets, note)
        else:
            # Persisted so that a restart queues it again; a recovered task keeps its place in the line.
            task.status, task.update_time = TaskStatus.PENDING, utcnow()
            task.queued_time = task.queued_time or task.update_time
            self._queue.append((task, targets, note))
            await save_state(self._store, task)
            self._publish_queue()

    def _launch(self, task: Task, targets: frozenset[int] | None, note: str) -> Runner:
        run = Runner(task, targets, self.services, self.broker, note)
        self._runs[task.id] = run
        self._spawn(self._drive(run), f"run-{task.id}")
        return run

    async def _drive(self, run: Runner) -> None:
        try:
            await run.execute()
        finally:
            self._runs.pop(run.task.id, None)
            self._fill_slots()

    def _fill_slots(self) -> None:
        while self._queue and not self._closing and len(self._runs) + self._reserved < self._slots:
            task, targets, note = self._queue.popleft()
            self._reserved += 1
            self._spawn(self._promote(task.id, targets, note), f"promote-{task.id}")
        self._publish_queue()

    async def _promote(self, task_id: str, targets: frozenset[int] | None, note: str) -> None:
        try:
            async with self._lock(task_id):
                try:
                    task = await self._store.get_task(task_id)
                except NotFound:
                    return
                if task.status is not TaskStatus.PENDING or task_id in self._runs:
                    return  # cancelled or deleted while it waited
                task.status, task.update_time, task.queued_time = TaskStatus.PROCESSING, utcnow(), None
                await save_state(self._store, task)
                self._launch(task, targets, note)
        finally:
            self._reserved -= 1
        self._fill_slots()

    def _unqueue(self, task_id: str) -> Task | None:
        for entry in self._queue:
            if entry[0].id == task_id:
                self._queue.remove(entry)
                return entry[0]
        return None

    def _publish_queue(self) -> None:
        for position, (task, _, _) in enumerate(self._queue, start=1):
            self.broker.publish(queued_event(task, position, len(self._queue), self._slots))

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception:
                log.exception("scheduler background step failed (%s)", name)

        handle = asyncio.create_task(guarded(), name=name)
        self._background.add(handle)
        handle.add_done_callback(self._background.discard)

    @asynccontextmanager
    async def _lock(self, task_id: str) -> AsyncIterator[None]:
        # Reference-counted so the table holds only tasks someone is acting on right now.
        entry = self._locks.setdefault(task_id, _Held())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[task_id]


class _Held:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
