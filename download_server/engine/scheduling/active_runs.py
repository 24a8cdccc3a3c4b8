"""ActiveRuns: what this replica downloads. It claims runnable tasks while it has free slots (polling, and when
nudged), keeps their leases alive, stops a run when another replica leaves a command for it or its lease is
lost, publishes each run's end event once the lease is released, and hands every run back on drain."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Coroutine
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from download_server.domain.leases import Claim
from download_server.domain.lifecycle import Action
from download_server.domain.ports import Leases, Relay
from download_server.engine.jobs.parts import EngineParts
from download_server.engine.progress.events import TaskEvents
from download_server.engine.run.task_run import Halt, TaskRun
from download_server.engine.scheduling.replica import ReplicaSettings

log = logging.getLogger(__name__)
# Queue positions are re-published for this many waiting tasks when the line moves (each is an event).
QUEUE_EVENTS = 50


@dataclass
class Slot:
    """One run of this replica: its runner (whose fence says when its lease lapses unless renewed) and its lease."""

    runner: TaskRun
    token: str
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # the run ended and its lease is released
    # Held on after the run: this replica deletes the task next (the row goes with the lease), and nobody
    # may claim it in between.
    keep_lease: bool = False


class ActiveRuns:
    def __init__(
        self, parts: EngineParts, events: TaskEvents, leases: Leases, relay: Relay, replica: ReplicaSettings
    ) -> None:
        self.parts = parts
        self.events = events
        self.replica = replica
        self.slots = parts.settings.max_active_tasks
        self.per_user = parts.settings.max_active_tasks_per_user
        self.queued = 0  # tasks waiting for a slot on any replica, as of the last look at the queue
        self.closing = False
        # One claim (or take) at a time; a command for a task waits for a launch in flight.
        self.claiming = asyncio.Lock()
        self._leases = leases
        self._relay = relay
        self._active: dict[str, Slot] = {}
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()

    def get(self, task_id: str) -> Slot | None:
        return self._active.get(task_id)

    def __len__(self) -> int:
        return len(self._active)

    def free(self) -> int:
        return 0 if self.closing else self.slots - len(self._active)

    def nudge(self) -> None:
        """Look for work now (a slot freed here, or another replica queued or handed back a task)."""
        self._wake.set()

    def launch(self, claim: Claim, note: str, lapses: float) -> Slot:
        runner = TaskRun(claim.task, claim.targets, self.parts, self.events, note)
        if claim.command is not None:  # asked while nobody held the task: the run only records it
            runner.stop(claim.command)
        # The run writes only while this holds; renewals move it on (engine/fence.py).
        runner.fence.deadline, runner.fence.margin = lapses, self.replica.lease_seconds / 6
        slot = Slot(runner, claim.token)
        self._active[claim.task.id] = slot
        self.spawn(self._drive(slot), f"run-{claim.task.id}")
        self.start_loops()
        return slot

    async def halt(self, slot: Slot, stop: Action, *, keep_lease: bool = False) -> None:
        slot.keep_lease = keep_lease
        slot.runner.stop(stop)
        await slot.finished.wait()

    async def claim_pass(self) -> list[str]:
        async with self.claiming:
            free = self.free()
            if free <= 0:
                return []
            lapses = time.monotonic() + self.replica.lease_seconds
            exclude = set(self._active)
            found = await self._leases.claim(
                self.replica.replica_id, free, self.replica.lease_seconds, exclude, self.per_user
            )
            for claim in found:
                self.launch(claim, _note(claim), lapses)
        for claim in found:
            how = "queued" if not claim.resumed else f"from {claim.previous_owner or 'a stopped run'}"
            if claim.lapsed:
                how += " (its lease lapsed)"
            log.info("claimed task %s (%s)", claim.task.id, how, extra={"task_id": claim.task.id})
        if any(not claim.resumed for claim in found):
            await self.publish_queue()
        return [claim.task.id for claim in found]

    async def publish_queue(self) -> None:
        queue = await self._leases.queue(QUEUE_EVENTS, self.per_user)
        self.queued = queue.total
        for position, task in enumerate(queue.head, start=1):
            own = self.per_user if task.user_id in queue.busy else 0
            self.events.queued(task, position, queue.total, self.slots, own)

    def command_arrived(self, task_id: str) -> None:
        """A replica left a command for a task (its NOTIFY): act if the task is, or is about to be, ours."""
        if task_id in self._active or self.claiming.locked():
            self.spawn(self.apply_command(task_id), f"command-{task_id}")

    async def apply_command(self, task_id: str) -> None:
        async with self.claiming:  # a claim in flight may be launching this very task
            slot = self._active.get(task_id)
        if slot is None:
            return
        answer = await self._leases.renew({task_id: slot.token}, self.replica.lease_seconds)
        if task_id not in answer:
            slot.runner.stop(Halt.LOST)
        elif (command := answer[task_id]) is not None:
            slot.runner.stop(command)

    async def drain(self) -> int:
        self.closing = True
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        slots = list(self._active.values())
        for slot in slots:
            slot.runner.stop(Halt.SHUTDOWN)
        await asyncio.gather(*(slot.finished.wait() for slot in slots))
        if slots:
            self._relay.work_available()
            log.info("handed back %d download(s) for other replicas to claim", len(slots))
        return len(slots)

    async def close(self) -> None:
        await self.drain()
        for pending in list(self._background):
            pending.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception:
                log.exception("scheduler background step failed (%s)", name)

        handle = asyncio.create_task(guarded(), name=name)
        self._background.add(handle)
        handle.add_done_callback(self._background.discard)

    # Internals
    async def _drive(self, slot: Slot) -> None:
        task_id = slot.runner.task.id
        try:
            await slot.runner.execute()
        finally:
            if self._active.get(task_id) is slot:
                del self._active[task_id]
            try:
                if not slot.keep_lease:
                    await self._leases.release(task_id, slot.token)
            except Exception:
                log.warning("could not release a lease; it lapses by itself", exc_info=True, extra={"task_id": task_id})
            finally:
                if slot.runner.final is not None:
                    self.events.publish(slot.runner.final)
                slot.finished.set()
            self.nudge()

    def start_loops(self) -> None:
        """The claim and lease-renewal loops (started by recover(), or by the first run)."""
        if not self._loops and not self.closing:
            self._loops = [
                asyncio.create_task(self._claim_loop(), name="claim-loop"),
                asyncio.create_task(self._renew_loop(), name="lease-renewal"),
            ]

    async def _claim_loop(self) -> None:
        interval = self.replica.claim_interval
        while not self.closing:
            # Jittered, so replicas started together do not poll in step. (asyncio.timeout, not wait_for:
            # Python 3.11's wait_for loses a cancellation that coincides with the event being set.)
            with suppress(TimeoutError):
                async with asyncio.timeout(interval * random.uniform(0.8, 1.2)):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if not await self.claim_pass():  # else the line moved and publish_queue counted it
                    self.queued = (await self._leases.queue(0)).total
            except Exception:
                log.warning("claiming tasks failed; trying again", exc_info=True)

    async def _renew_loop(self) -> None:
        seconds = self.replica.lease_seconds
        while not self.closing:
            await asyncio.sleep(seconds / 3)
            held = {task_id: slot.token for task_id, slot in self._active.items()}
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
                slot = self._active.get(task_id)
                if slot is None or slot.token != token:
                    continue  # ended meanwhile
                if task_id not in answer:
                    log.warning("lost the lease of a running task: stopping it", extra={"task_id": task_id})
                    slot.runner.stop(Halt.LOST)
                    continue
                slot.runner.fence.deadline = asked + seconds
                if (command := answer[task_id]) is not None:  # its NOTIFY was missed: act on it now
                    slot.runner.stop(command)

    def _fence(self, now: float) -> None:
        """Stop the runs whose lease may lapse before it can be renewed: another replica may claim them then,
        and two runs of one task must never overlap."""
        # Renewals come every lease/3, so the next chance is that far off (later still on a busy loop): a run
        # whose lease would lapse by then, give or take a margin, stops now rather than one attempt too late.
        seconds = self.replica.lease_seconds
        deadline = now + seconds / 3 + seconds / 6
        for task_id, slot in list(self._active.items()):
            if deadline > slot.runner.fence.deadline:
                log.warning("lease about to lapse unrenewed: stopping the run", extra={"task_id": task_id})
                slot.runner.stop(Halt.LOST)


def _note(claim: Claim) -> str:
    if claim.targets is not None and not claim.resumed:
        return f"retrying {len(claim.targets)} failed part(s)"
    if not claim.resumed:
        return "started"
    if claim.lapsed:
        return f"resumed: replica {claim.previous_owner} stopped renewing its lease"
    return "resumed; finished segments are not fetched again"
