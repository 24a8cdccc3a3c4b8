"""ReplicaScheduler: this replica's share of the downloads, on a database that other replicas may share.

Actions (start, pause, ...) change the task under its row lock (domain/leases.py decides what). Starting
runs the task here when a slot is free and nothing else waits, else queues it for whichever replica frees a
slot first (active_runs.py claims, keeps leases alive and applies commands). Pausing, cancelling or deleting
a task another replica runs leaves a command for that replica and waits until it has acted. Streams only
subscribe to the broker: closing one never touches a download.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, suppress

from aiohttp.abc import AbstractResolver

from download_server.domain import leases as decisions
from download_server.domain.errors import task_missing
from download_server.domain.leases import Claim, Decision, LeaseState, Outcome
from download_server.domain.lifecycle import Action
from download_server.domain.models import Failure, Task, TaskEvent, TaskStatus
from download_server.domain.ports import DeletedTask, Leases, MediaStore, Relay, TaskStore
from download_server.engine.files.layout import Storage
from download_server.engine.files.objects import WorkAreaMedia, abort_open_uploads
from download_server.engine.http.fetch import Fetcher
from download_server.engine.http.guard import PolicyGuard, UrlGuard
from download_server.engine.http.url_policy import Resolver
from download_server.engine.jobs.parts import OPEN, EngineParts
from download_server.engine.metrics import EngineMetrics, NoMetrics
from download_server.engine.progress.broker import watch_task, watch_user
from download_server.engine.progress.events import TaskEvents
from download_server.engine.progress.relay import LocalRelay, RelayedBroker
from download_server.engine.scheduling.active_runs import ActiveRuns
from download_server.engine.scheduling.replica import ReplicaSettings, default_replica_id
from download_server.engine.settings import EngineSettings
from mediadl_common.errors import FailedPrecondition, Unavailable

log = logging.getLogger(__name__)
# While another replica stops a task, how often the state is read again between its events.
OWNER_POLL_SECONDS = 0.2


def create_scheduler(
    store: TaskStore,
    settings: EngineSettings,
    *,
    resolve: Resolver | None = None,
    resolver: AbstractResolver | None = None,
    guard: UrlGuard | None = None,
    metrics: EngineMetrics | None = None,
    leases: Leases,
    relay: Relay | None = None,
    replica: ReplicaSettings | None = None,
    media: MediaStore | None = None,
) -> ReplicaScheduler:
    """The engine as the composition root wires it: one fetcher (one aiohttp session), one broker.

    `resolve` is url_policy's name lookup for the policy check and `resolver` aiohttp's for connections
    (both default to the system resolver; tests inject fixed answers). `guard` replaces the policy guard
    built from those (tests only). `relay` defaults to one process on its own; `media` (where finished files
    are published) to the storage directory itself.
    Call `await scheduler.recover()` once the server is up and `await scheduler.close()` at shutdown.
    """
    guard = guard or PolicyGuard(allow_private=settings.allow_private_networks, resolve=resolve)
    metrics = metrics or NoMetrics()
    fetcher = Fetcher(
        settings.fetch, guard, resolver=resolver, on_retry=lambda e: metrics.fetch_retried(e.error_type.value)
    )
    storage = Storage(settings.storage_dir)
    parts = EngineParts(store, storage, fetcher, settings, media or WorkAreaMedia(storage.root), metrics)
    relay = relay or LocalRelay()
    return ReplicaScheduler(
        parts, RelayedBroker(relay), leases, relay, replica or ReplicaSettings(default_replica_id())
    )


class ReplicaScheduler:
    def __init__(
        self, parts: EngineParts, broker: RelayedBroker, leases: Leases, relay: Relay, replica: ReplicaSettings
    ) -> None:
        self.parts = parts
        self.broker = broker
        self.events = TaskEvents(broker)
        self.replica = replica
        self._store = parts.store
        self._leases = leases
        self._relay = relay
        self._runs = ActiveRuns(parts, self.events, leases, relay, replica)
        self._locks: dict[str, _Held] = {}
        relay.bind(broker, self._runs.nudge, self._runs.command_arrived)

    @property
    def replica_id(self) -> str:
        return self.replica.replica_id

    # The actions of the API (same names as the services' Scheduler port).
    async def start(self, task_id: str) -> None:
        """PENDING or CANCELLED -> running here if a slot is free and nothing waits, else queued for any replica.
        Running or queued already: nothing to do (the caller attaches)."""
        await self._enqueue(task_id, decisions.start, None, "started")

    async def resume(self, task_id: str) -> None:
        await self._enqueue(task_id, decisions.resume, None, "resumed; finished segments are not fetched again")

    async def retry(self, task_id: str) -> None:
        """FAILED or PARTIAL_COMPLETED: fetch again exactly what the open failure records name."""
        targets = frozenset(f.segment_index for f in await self._store.task_failures(task_id, OPEN))
        await self._enqueue(
            task_id, lambda take: decisions.retry(targets, take), targets, f"retrying {len(targets)} failed part(s)"
        )

    async def pause(self, task_id: str) -> None:
        await self._stop(task_id, Action.PAUSE)

    async def cancel(self, task_id: str) -> None:
        await self._stop(task_id, Action.CANCEL)

    async def delete(self, task_id: str, user_id: str) -> DeletedTask:
        """Stop the task's run (here, or another replica's), then remove its rows in one transaction."""
        deadline = self._owner_deadline()
        while True:
            # Claims wait meanwhile: a run launched here between the look and the removal would lose its rows.
            async with self._lock(task_id), self._runs.claiming:
                slot = self._runs.get(task_id)
                if slot is not None:
                    if slot.runner.task.user_id != user_id:
                        raise task_missing(task_id)  # before anything is stopped
                    # The run keeps its lease until the rows are gone, so no replica claims the task meanwhile.
                    await self._runs.halt(slot, Action.DELETE, keep_lease=True)
                decision, deleted = await self._leases.remove(task_id, user_id, decisions.delete(self.replica_id))
            if deleted is not None:
                if slot is not None or decision.was_active:
                    self.events.deleted(decision.task)
                if slot is None and decision.was_active:
                    await self._runs.publish_queue()  # a queued task left the line
                # With or without its files, no upload of a task that is gone stays open.
                await abort_open_uploads(self.parts.storage, self.parts.media, deleted.task)
                return deleted
            await self._await_owner(task_id, decision, deadline)

    async def retry_failure(self, failure_id: str) -> Failure:
        """Fetch one failed segment now, here (not queued), and return its record after the attempt."""
        failure = await self._store.get_failure(failure_id)
        async with self._lock(failure.task_id):
            failure = await self._store.get_failure(failure_id)
            if not failure.status.is_open:
                raise FailedPrecondition(f"the failure is {failure.status.value}: only open failures can be retried")
            if self._runs.closing:
                raise FailedPrecondition("the server is shutting down", reason="SHUTTING_DOWN")
            decide = decisions.retry_one(self.replica_id, self.replica.lease_seconds, failure.segment_index)
            lapses = time.monotonic() + self.replica.lease_seconds
            decision = await self._leases.act(failure.task_id, decide)
            assert decision.token is not None
            claim = Claim(decision.task, decision.token, frozenset({failure.segment_index}), None, False, None, False)
            slot = self._runs.launch(claim, "retrying one failed part", lapses)
        await slot.finished.wait()
        return await self._store.get_failure(failure_id)

    async def recover(self) -> list[str]:
        """Once serving: claim what waits, and start the claim and lease-renewal loops.

        On a database no other process uses (SQLite), leases left by an earlier run of this process are
        void at once. A shared one keeps them until they lapse, even under this replica's own name: a second
        process wrongly given the same DOWNLOAD_REPLICA_ID must not take over the first one's live runs."""
        if not self._leases.shared:
            await self._leases.reset(None)
        waiting = await self._leases.runnable()
        if waiting:
            log.info("recovering %d interrupted or queued download(s)", waiting)
        self._runs.start_loops()
        return await self._runs.claim_pass()

    async def drain(self) -> int:
        """Stop claiming and hand back every run: each stays PROCESSING with its lease released, so another
        replica (or the next start of this one) claims it at once and resumes from its persisted segments."""
        return await self._runs.drain()

    async def close(self) -> None:
        """Drain, then close the HTTP session and the media store's connections."""
        await self._runs.close()
        await self.parts.fetcher.close()
        await self.parts.media.close()

    # Queries for the API layer
    def is_active(self, task_id: str) -> bool:
        """Running here (another replica's runs are in the database: tasks.lease_owner)."""
        return self._runs.get(task_id) is not None

    def watch(self, task_id: str, load: Callable[[], Awaitable[Task]]) -> AsyncGenerator[TaskEvent, None]:
        return watch_task(self.broker, task_id, load)

    def watch_user(
        self, user_id: str, load: Callable[[], Awaitable[list[Task]]], statuses: Iterable[TaskStatus] = ()
    ) -> AsyncGenerator[TaskEvent, None]:
        return watch_user(self.broker, user_id, load, statuses)

    def running_count(self) -> int:
        return len(self._runs)

    def queued_count(self) -> int:
        """Tasks waiting for a slot on any replica, as of this replica's last look at the queue."""
        return self._runs.queued

    # Internals
    async def _enqueue(
        self,
        task_id: str,
        decide: Callable[[decisions.Take | None], decisions.Decide],
        targets: frozenset[int] | None,
        note: str,
    ) -> None:
        # Accepted while draining too: the task waits in the database for another replica (or the next start).
        async with self._lock(task_id), self._runs.claiming:
            take = None
            # Run it here at once if that keeps the line's order: a free slot, and nothing else waiting.
            if self._runs.free() > 0 and not await self._leases.runnable():
                take = decisions.Take(self.replica_id, self.replica.lease_seconds, self._runs.per_user)
            lapses = time.monotonic() + self.replica.lease_seconds
            decision = await self._leases.act(task_id, decide(take))
            if decision.outcome is Outcome.CLAIMED:
                assert decision.token is not None
                self._runs.launch(Claim(decision.task, decision.token, targets, None, False, None, False), note, lapses)
        if decision.outcome is Outcome.CLAIMED:
            log.info("claimed task %s (%s here)", task_id, note.split(";")[0], extra={"task_id": task_id})
        if decision.outcome is not Outcome.QUEUED:
            return
        await self._runs.claim_pass()
        if self.is_active(task_id):
            return
        self._relay.work_available()
        place = await self._leases.position(task_id)
        if place is not None:  # else another replica has claimed it already
            position, self._runs.queued = place
            per_user = self._runs.per_user
            own = per_user if 0 < per_user <= decision.user_running else 0
            self.events.queued(decision.task, position, place[1], self._runs.slots, own)

    async def _stop(self, task_id: str, action: Action) -> None:
        target = action.target()
        deadline = self._owner_deadline()
        while True:
            async with self._lock(task_id):
                slot = self._runs.get(task_id)
                if slot is not None:
                    action.check(slot.runner.task.status)
                    await self._runs.halt(slot, action)
                    if slot.runner.task.status is not target:  # it finished on its own first
                        action.check(slot.runner.task.status)
                    return
                decision = await self._leases.act(task_id, decisions.stop(action))
            if decision.outcome is Outcome.DONE:
                self.events.stopped(decision.task, action)
                if action is Action.CANCEL:  # a paused task's upload: nobody will continue it now
                    await abort_open_uploads(self.parts.storage, self.parts.media, decision.task)
                if decision.was_active:
                    await self._runs.publish_queue()
                return
            state = await self._await_owner(task_id, decision, deadline)
            if state is not None and state.status is target:
                return
            # It ended on its own (the next act refuses the transition), or its owner went away (act stops it here).

    async def _await_owner(self, task_id: str, decision: Decision, deadline: float) -> LeaseState | None:
        """The lease holder has a command waiting: tell it, then wait until that lease has ended (the run
        stopped and released it). A holder that died stops renewing, so its lease lapses by itself."""
        if decision.owner == self.replica_id:
            self._runs.spawn(self._runs.apply_command(task_id), f"command-{task_id}")
        else:
            self._relay.command(task_id)
        with self.broker.subscribe(task_id=task_id) as events:
            while True:
                state = await self._leases.inspect(task_id)
                if state is None or state.token != decision.token or not state.live:
                    return state  # that run is over (its end event comes after its lease is released)
                if time.monotonic() > deadline:
                    raise Unavailable(f"replica {state.owner} running task {task_id} did not act on the request")
                with suppress(TimeoutError):
                    async with asyncio.timeout(OWNER_POLL_SECONDS):
                        await anext(events)

    def _owner_deadline(self) -> float:
        # An owner acts within a second; one that died loses its lease within lease_seconds.
        return time.monotonic() + 2 * self.replica.lease_seconds + self.replica.claim_interval + 5.0

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
