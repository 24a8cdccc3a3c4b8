"""Scheduler: this replica's share of the downloads, on a database that other replicas may share.

Actions (start, pause, ...) change the task under its row lock (engine/claims.py decides what); starting
only queues a task, and whichever replica has a free slot claims it (this one first, if it can). A replica
runs at most max_active_tasks, renews its leases while it runs them, and acts on the commands other replicas
leave for its tasks. Streams only subscribe to the broker: closing one never touches a download.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp.abc import AbstractResolver

from download_server.adapters.storage import Storage
from download_server.domain.models import Failure, Task, TaskEvent, TaskStatus, require_transition
from download_server.domain.ports import TaskStore
from download_server.engine import claims
from download_server.engine.claims import Claim, Decision, Leases, LeaseState, Outcome, ReplicaSettings
from download_server.engine.fetch import Fetcher
from download_server.engine.guard import PolicyGuard, UrlGuard
from download_server.engine.memory_leases import MemoryLeases
from download_server.engine.metrics import EngineMetrics, NoMetrics
from download_server.engine.notify import LocalRelay, Relay, RelayedBroker
from download_server.engine.progress import watch_task, watch_user
from download_server.engine.run import OPEN, Services
from download_server.engine.runner import Runner, Stop, queued_event
from download_server.engine.settings import EngineSettings
from download_server.engine.url_policy import Resolver
from mediadl_common.errors import FailedPrecondition, Unavailable

log = logging.getLogger(__name__)
_DONE = {"pause": "paused", "cancel": "cancelled"}
# Queue positions are re-published for this many waiting tasks when the line moves (each is an event).
QUEUE_EVENTS = 50
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
    leases: Leases | None = None,
    relay: Relay | None = None,
    replica: ReplicaSettings | None = None,
) -> Scheduler:
    """The engine as the composition root wires it: one fetcher (one aiohttp session), one broker.

    `resolve` is url_policy's name lookup for the policy check and `resolver` aiohttp's for connections
    (both default to the system resolver; tests inject fixed answers). `guard` replaces the policy guard
    built from those (tests only). `leases` and `relay` default to one process on its own (in memory).
    Call `await scheduler.recover()` once the server is up and `await scheduler.close()` at shutdown.
    """
    guard = guard or PolicyGuard(allow_private=settings.allow_private_networks, resolve=resolve)
    metrics = metrics or NoMetrics()
    fetcher = Fetcher(
        settings.fetch, guard, resolver=resolver, on_retry=lambda e: metrics.fetch_retried(e.error_type.value)
    )
    services = Services(store, Storage(settings.storage_dir), fetcher, settings, metrics)
    relay = relay or LocalRelay()
    return Scheduler(
        services,
        RelayedBroker(relay),
        leases or MemoryLeases(store),
        relay,
        replica or ReplicaSettings(claims.default_replica_id()),
    )


@dataclass
class _Slot:
    """One run of this replica: its runner, its lease, and when that lease lapses unless renewed."""

    runner: Runner
    token: str
    lapses: float  # time.monotonic() deadline
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # the run ended and its lease is released


class Scheduler:
    def __init__(
        self, services: Services, broker: RelayedBroker, leases: Leases, relay: Relay, replica: ReplicaSettings
    ) -> None:
        self.services = services
        self.broker = broker
        self.replica = replica
        self._store = services.store
        self._leases = leases
        self._relay = relay
        self._slots = services.settings.max_active_tasks
        self._runs: dict[str, _Slot] = {}
        self._locks: dict[str, _Held] = {}
        self._claiming = asyncio.Lock()  # one claim pass at a time; a command waits for a launch in flight
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._queued = 0
        self._closing = False
        relay.bind(broker, self.nudge, self._command_arrived)

    @property
    def replica_id(self) -> str:
        return self.replica.replica_id

    # The actions of the API (same names as the services' Scheduler port).
    async def start(self, task_id: str) -> None:
        """PENDING or CANCELLED -> running here if a slot is free and nothing waits, else queued for any replica.
        Running or queued already: nothing to do (the caller attaches)."""
        await self._enqueue(task_id, claims.start, None, "started")

    async def resume(self, task_id: str) -> None:
        await self._enqueue(task_id, claims.resume, None, "resumed; finished segments are not fetched again")

    async def retry(self, task_id: str) -> None:
        """FAILED or PARTIAL_COMPLETED: fetch again exactly what the open failure records name."""
        targets = frozenset(f.segment_index for f in await self._store.task_failures(task_id, OPEN))
        await self._enqueue(
            task_id, lambda take: claims.retry(targets, take), targets, f"retrying {len(targets)} failed part(s)"
        )

    async def pause(self, task_id: str) -> None:
        await self._stop(task_id, Stop.PAUSE, "pause", TaskStatus.PAUSED)

    async def cancel(self, task_id: str) -> None:
        await self._stop(task_id, Stop.CANCEL, "cancel", TaskStatus.CANCELLED)

    async def delete(self, task_id: str) -> None:
        """Make sure nothing runs the task, here or on another replica, and nobody claims it (its rows are going)."""
        deadline = self._owner_deadline()
        while True:
            async with self._lock(task_id):
                decision = await self._leases.act(task_id, claims.delete)
                slot = self._runs.get(task_id)
                if slot is not None:
                    await self._halt(slot, Stop.DELETE)
                    self._announce_deleted(slot.runner.task)
                    return
            if decision.outcome is Outcome.DONE:
                if decision.was_active:
                    self._announce_deleted(decision.task)
                    await self._publish_queue()
                return
            await self._await_owner(task_id, decision, deadline)

    async def retry_failure(self, failure_id: str) -> Failure:
        """Fetch one failed segment now, here (not queued), and return its record after the attempt."""
        failure = await self._store.get_failure(failure_id)
        async with self._lock(failure.task_id):
            failure = await self._store.get_failure(failure_id)
            if not failure.status.is_open:
                raise FailedPrecondition(f"the failure is {failure.status.value}: only open failures can be retried")
            self._refuse_if_closing()
            decide = claims.retry_one(self.replica_id, self.replica.lease_seconds, failure.segment_index)
            lapses = time.monotonic() + self.replica.lease_seconds
            decision = await self._leases.act(failure.task_id, decide)
            assert decision.token is not None
            claim = Claim(decision.task, decision.token, frozenset({failure.segment_index}), None, False, None, False)
            slot = self._launch(claim, "retrying one failed part", lapses)
        await slot.finished.wait()
        return await self._store.get_failure(failure_id)

    async def recover(self) -> list[str]:
        """Once serving: void leases an earlier run of this process left, claim what waits, start the loops."""
        await self._leases.reset(self.replica_id if self._leases.shared else None)
        waiting = await self._leases.runnable()
        if waiting:
            log.info("recovering %d interrupted or queued download(s)", waiting)
        self._ensure_loops()
        return await self._claim_pass()

    async def drain(self) -> int:
        """Stop claiming and hand back every run: each stays PROCESSING with its lease released, so another
        replica (or the next start of this one) claims it at once and resumes from its persisted segments."""
        self._closing = True
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        slots = list(self._runs.values())
        for slot in slots:
            slot.runner.stop(Stop.SHUTDOWN)
        await asyncio.gather(*(slot.finished.wait() for slot in slots))
        if slots:
            self._relay.work_available()
            log.info("handed back %d download(s) for other replicas to claim", len(slots))
        return len(slots)

    async def close(self) -> None:
        """Drain, then close the HTTP session."""
        await self.drain()
        for pending in list(self._background):
            pending.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.services.fetcher.close()

    # Queries for the API layer
    def is_active(self, task_id: str) -> bool:
        """Running here (another replica's runs are in the database: tasks.lease_owner)."""
        return task_id in self._runs

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
        return self._queued

    def nudge(self) -> None:
        """Look for work now (a slot freed here, or another replica queued or handed back a task)."""
        self._wake.set()

    # Actions, internals
    async def _enqueue(
        self,
        task_id: str,
        decide: Callable[[claims.Take | None], claims.Decide],
        targets: frozenset[int] | None,
        note: str,
    ) -> None:
        # Accepted while draining too: the task waits in the database for another replica (or the next start).
        async with self._lock(task_id), self._claiming:
            take = None
            # Run it here at once if that keeps the line's order: a free slot, and nothing else waiting.
            if not self._closing and len(self._runs) < self._slots and not await self._leases.runnable():
                take = claims.Take(self.replica_id, self.replica.lease_seconds)
            lapses = time.monotonic() + self.replica.lease_seconds
            decision = await self._leases.act(task_id, decide(take))
            if decision.outcome is Outcome.CLAIMED:
                assert decision.token is not None
                self._launch(Claim(decision.task, decision.token, targets, None, False, None, False), note, lapses)
        if decision.outcome is Outcome.CLAIMED:
            log.info("claimed task %s (%s here)", task_id, note.split(";")[0], extra={"task_id": task_id})
        if decision.outcome is not Outcome.QUEUED:
            return
        await self._claim_pass()
        if task_id in self._runs:
            return
        self._relay.work_available()
        place = await self._leases.position(task_id)
        if place is not None:  # else another replica has claimed it already
            position, self._queued = place
            self.broker.publish(queued_event(replace(decision.task), position, self._queued, self._slots))

    async def _stop(self, task_id: str, stop: Stop, action: str, target: TaskStatus) -> None:
        deadline = self._owner_deadline()
        while True:
            async with self._lock(task_id):
                slot = self._runs.get(task_id)
                if slot is not None:
                    require_transition(action, slot.runner.task.status)
                    await self._halt(slot, stop)
                    if slot.runner.task.status is not target:  # it finished on its own first
                        require_transition(action, slot.runner.task.status)
                    return
                decision = await self._leases.act(task_id, claims.stop(action, target))
            if decision.outcome is Outcome.DONE:
                self.broker.publish(TaskEvent.of(decision.task, message=_DONE[action]))
                if decision.was_active:
                    await self._publish_queue()
                return
            state = await self._await_owner(task_id, decision, deadline)
            if state is not None and state.status is target:
                return
            # It ended on its own (the next act refuses the transition), or its owner went away (act stops it here).

    async def _await_owner(self, task_id: str, decision: Decision, deadline: float) -> LeaseState | None:
        """The lease holder has a command waiting: tell it, then wait until that lease has ended (the run
        stopped and released it). A holder that died stops renewing, so its lease lapses by itself."""
        if decision.owner == self.replica_id:
            self._spawn(self._command_arrived_async(task_id), f"command-{task_id}")
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

    async def _halt(self, slot: _Slot, stop: Stop) -> None:
        slot.runner.stop(stop)
        await slot.finished.wait()

    def _announce_deleted(self, task: Task) -> None:
        # CANCELLED ends every stream watching it.
        self.broker.publish(TaskEvent.of(replace(task, status=TaskStatus.CANCELLED), message="deleted"))

    def _refuse_if_closing(self) -> None:
        if self._closing:
            raise FailedPrecondition("the server is shutting down", reason="SHUTTING_DOWN")

    # Claims, leases and commands
    async def _claim_pass(self) -> list[str]:
        async with self._claiming:
            free = self._slots - len(self._runs)
            if self._closing or free <= 0:
                return []
            lapses = time.monotonic() + self.replica.lease_seconds
            found = await self._leases.claim(self.replica_id, free, self.replica.lease_seconds, set(self._runs))
            for claim in found:
                self._launch(claim, _note(claim), lapses)
        for claim in found:
            how = "queued" if not claim.resumed else f"from {claim.previous_owner or 'a stopped run'}"
            if claim.lapsed:
                how += " (its lease lapsed)"
            log.info("claimed task %s (%s)", claim.task.id, how, extra={"task_id": claim.task.id})
        if any(not claim.resumed for claim in found):
            await self._publish_queue()
        return [claim.task.id for claim in found]

    def _launch(self, claim: Claim, note: str, lapses: float) -> _Slot:
        runner = Runner(claim.task, claim.targets, self.services, self.broker, note)
        if claim.command is not None:  # asked while nobody held the task: the run only records it
            runner.stop(Stop(claim.command.value))
        slot = _Slot(runner, claim.token, lapses)
        self._runs[claim.task.id] = slot
        self._spawn(self._drive(slot), f"run-{claim.task.id}")
        self._ensure_loops()
        return slot

    async def _drive(self, slot: _Slot) -> None:
        task_id = slot.runner.task.id
        try:
            await slot.runner.execute()
        finally:
            if self._runs.get(task_id) is slot:
                del self._runs[task_id]
            try:
                await self._leases.release(task_id, slot.token)
            except Exception:
                log.warning("could not release a lease; it lapses by itself", exc_info=True, extra={"task_id": task_id})
            finally:
                if slot.runner.final is not None:
                    self.broker.publish(slot.runner.final)
                slot.finished.set()
            self.nudge()

    def _ensure_loops(self) -> None:
        if not self._loops and not self._closing:
            self._loops = [
                asyncio.create_task(self._claim_loop(), name="claim-loop"),
                asyncio.create_task(self._renew_loop(), name="lease-renewal"),
            ]

    async def _claim_loop(self) -> None:
        interval = self.replica.claim_interval
        while not self._closing:
            # Jittered, so replicas started together do not poll in step. (asyncio.timeout, not wait_for:
            # Python 3.11's wait_for loses a cancellation that coincides with the event being set.)
            with suppress(TimeoutError):
                async with asyncio.timeout(interval * random.uniform(0.8, 1.2)):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if not await self._claim_pass():  # else the line moved and _publish_queue counted it
                    self._queued = (await self._leases.queue(0)).total
            except Exception:
                log.warning("claiming tasks failed; trying again", exc_info=True)

    async def _renew_loop(self) -> None:
        seconds = self.replica.lease_seconds
        while not self._closing:
            await asyncio.sleep(seconds / 3)
            held = {task_id: slot.token for task_id, slot in self._runs.items()}
            if not held:
                continue
            asked = time.monotonic()
            try:
                answer = await self._leases.renew(held, seconds)
            except Exception:
                log.warning("renewing %d lease(s) failed", len(held), exc_info=True)
                self._fence(time.monotonic())
                continue
            for task_id, token in held.items():
                slot = self._runs.get(task_id)
                if slot is None or slot.token != token:
                    continue  # ended meanwhile
                if task_id not in answer:
                    log.warning("lost the lease of a running task: stopping it", extra={"task_id": task_id})
                    slot.runner.stop(Stop.LOST)
                    continue
                slot.lapses = asked + seconds
                command = answer[task_id]
                if command is not None:  # the LISTEN nudge was missed: act on it now
                    slot.runner.stop(Stop(command.value))

    def _fence(self, now: float) -> None:
        """Stop the runs whose lease may lapse before it can be renewed: another replica may claim them then,
        and two runs of one task must never overlap."""
        margin = self.replica.lease_seconds / 6
        for task_id, slot in list(self._runs.items()):
            if now > slot.lapses - margin:
                log.warning("lease about to lapse unrenewed: stopping the run", extra={"task_id": task_id})
                slot.runner.stop(Stop.LOST)

    def _command_arrived(self, task_id: str) -> None:
        if task_id in self._runs or self._claiming.locked():
            self._spawn(self._command_arrived_async(task_id), f"command-{task_id}")

    async def _command_arrived_async(self, task_id: str) -> None:
        async with self._claiming:  # a claim in flight may be launching this very task
            slot = self._runs.get(task_id)
        if slot is None:
            return
        answer = await self._leases.renew({task_id: slot.token}, self.replica.lease_seconds)
        command = answer.get(task_id)
        if task_id not in answer:
            slot.runner.stop(Stop.LOST)
        elif command is not None:
            slot.runner.stop(Stop(command.value))

    async def _publish_queue(self) -> None:
        queue = await self._leases.queue(QUEUE_EVENTS)
        self._queued = queue.total
        for position, task in enumerate(queue.head, start=1):
            self.broker.publish(queued_event(task, position, queue.total, self._slots))

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


def _note(claim: Claim) -> str:
    if claim.targets is not None and not claim.resumed:
        return f"retrying {len(claim.targets)} failed part(s)"
    if not claim.resumed:
        return "started"
    if claim.lapsed:
        return f"resumed: replica {claim.previous_owner} stopped renewing its lease"
    return "resumed; finished segments are not fetched again"


class _Held:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
