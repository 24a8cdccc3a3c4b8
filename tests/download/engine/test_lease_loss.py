"""The losing side of a lease: a run whose lease another replica took, or whose renewals fail, stops on its
own and writes nothing more for that task (no task row, segment, failure, video, file or final event); with
failing renewals it stops while its lease is still live, before anyone else may claim the task."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest

from download_server.domain.leases import Claim
from download_server.domain.lifecycle import Action
from download_server.domain.models import ResourceType, Segment, SegmentStatus, Task, TaskStatus
from download_server.engine.files.layout import Storage
from download_server.engine.scheduling.replica import ReplicaSettings
from download_server.engine.scheduling.scheduler import ReplicaScheduler, create_scheduler
from tests.download.engine.conftest import ENGINE, FAST
from tests.download.engine.fakes import FakeTaskStore
from tests.download.engine.memory_leases import MemoryLeases
from tests.support.origin import Origin

LEASE = 3.0  # renewed every second: the fence has a renewal interval of room before the lease lapses
HELD = (3, 4, 5)


def seg(i: int) -> str:
    return f"hls_ts/seg{i:02d}.ts"


class WatchedStore(FakeTaskStore):
    """The fake store, telling waiters whenever progress is saved (the engine's flushes have no event)."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Condition()

    async def save_progress(self, task: Task, segments: Sequence[Segment]) -> None:
        await super().save_progress(task, segments)
        async with self.changed:
            self.changed.notify_all()


class FailingLeases(MemoryLeases):
    """The lease store as a replica sees it when the database stops answering: renewals, claims and releases
    raise. Tells waiters when a run releases its lease (its end: it has left the scheduler by then)."""

    failing = False

    def __init__(self, store: FakeTaskStore) -> None:
        super().__init__(store)
        self.released: set[str] = set()
        self.live_when_released: dict[str, bool] = {}
        self.changed = asyncio.Condition()

    async def release(self, task_id: str, token: str) -> None:
        lease = self._leases.get(task_id)
        self.live_when_released[task_id] = lease is not None and lease.token == token and lease.live(self._clock())
        async with self.changed:
            self.released.add(task_id)
            self.changed.notify_all()
        self._reachable()
        await super().release(task_id, token)

    async def run_ended(self, task_id: str) -> None:
        async with asyncio.timeout(30), self.changed:
            await self.changed.wait_for(lambda: task_id in self.released)

    async def renew(self, held: Mapping[str, str], seconds: float) -> dict[str, Action | None]:
        self._reachable()
        return await super().renew(held, seconds)

    async def claim(
        self, owner: str, limit: int, seconds: float, exclude: Collection[str], per_user: int = 0
    ) -> list[Claim]:
        self._reachable()
        return await super().claim(owner, limit, seconds, exclude, per_user)

    def _reachable(self) -> None:
        if self.failing:
            raise ConnectionError("the database is unreachable")

    def take_over(self, task_id: str) -> None:
        """What another replica's claim leaves: a new token and owner on the task's lease."""
        lease = self._leases[task_id]
        lease.token, lease.owner = "token-of-replica-b", "replica-b"


class Replica:
    def __init__(self, origin: Origin, storage: Storage) -> None:
        self.origin = origin
        self.storage = storage
        self.store = WatchedStore()
        self.leases = FailingLeases(self.store)
        replica = ReplicaSettings("replica-a", lease_seconds=LEASE, claim_interval=0.2)
        # The held requests must outlast the lease: no read timeout and retry may end them first.
        settings = replace(ENGINE, storage_dir=storage.root, fetch=replace(FAST, read_timeout=60.0))
        self.scheduler: ReplicaScheduler = create_scheduler(self.store, settings, leases=self.leases, replica=replica)
        self.gates: list[asyncio.Event] = []

    async def running_with_segments_held(self) -> Task:
        """A task that has saved segments 0-2 and waits on the origin for 3-5 (nothing else changes)."""
        self.gates = [self.origin.gate(seg(i)) for i in HELD]
        url = self.origin.url("hls_ts/index.m3u8")
        task = Task("t-lease", "user-1", "video-1", "room", "title", "", url, ResourceType.HLS)
        await self.store.save_task(task)
        with self.scheduler.broker.subscribe(task_id=task.id) as sub:
            await self.scheduler.start(task.id)
            async for event in sub:
                if event.segments_done == 3:
                    break
        for i in HELD:
            await asyncio.wait_for(self.origin.wait_requests(seg(i), 1), timeout=30)
        await self._flushed(task.id)
        return task

    async def _flushed(self, task_id: str) -> None:
        # Segments 0-2 reach the store on the tracker's next flush (every 0.1 s): wait for it, so that what
        # follows is the state the losing run must leave alone.
        store = self.store

        def saved() -> bool:
            done = [s for s in store.segments.get(task_id, {}).values() if s.status is SegmentStatus.DONE]
            return len(done) == 3 and store.tasks[task_id].segments_done == 3

        async with asyncio.timeout(30), store.changed:
            await store.changed.wait_for(saved)

    def snapshot(self, task_id: str) -> tuple[Any, ...]:
        store = self.store
        return (
            copy.deepcopy(store.tasks[task_id]),
            copy.deepcopy(store.segments.get(task_id, {})),
            {k: v for k, v in store.failures.items() if v.task_id == task_id},
            store.videos.get(task_id),
            sorted(p.name for p in (self.storage.hls_dir(task_id) / "ts").iterdir()),
            {name: count for name, count in store.calls.items() if not name.startswith(("get", "list", "task"))},
        )


@pytest.fixture
async def replica(origin: Origin, storage: Storage) -> AsyncIterator[Replica]:
    built = Replica(origin, storage)
    yield built
    await built.scheduler.close()


async def the_run_stopped_and_wrote_nothing(replica: Replica, task: Task, before: tuple[Any, ...]) -> None:
    published: list[Any] = []
    with replica.scheduler.broker.subscribe(task_id=task.id) as sub:
        watching = asyncio.ensure_future(_collect(sub, published))
        await replica.leases.run_ended(task.id)
        assert not replica.scheduler.is_active(task.id)
        # Let the origin answer now, and wait until each held request is over: a run that went on would read
        # them to the end and save them.
        for gate in replica.gates:
            gate.set()
        for i in HELD:
            await asyncio.wait_for(replica.origin.wait_settled(seg(i)), timeout=30)
        watching.cancel()
    assert [replica.origin.completed[seg(i)] for i in HELD] == [0, 0, 0]
    assert replica.snapshot(task.id) == before
    assert replica.store.tasks[task.id].status is TaskStatus.PROCESSING  # left for the lease's new holder
    assert [e for e in published if e.status is not TaskStatus.PROCESSING or e.segments_done != 3] == []


async def _collect(sub: Any, into: list[Any]) -> None:
    async for event in sub:
        into.append(event)


async def test_a_run_whose_lease_was_taken_stops_and_writes_nothing(replica: Replica) -> None:
    task = await replica.running_with_segments_held()
    before = replica.snapshot(task.id)
    replica.leases.take_over(task.id)  # the next renewal no longer includes this run's token

    await the_run_stopped_and_wrote_nothing(replica, task, before)
    state = await replica.leases.inspect(task.id)
    assert state is not None and state.token == "token-of-replica-b"  # its release did not end the new claim


async def test_a_run_whose_renewals_fail_stops_before_its_lease_lapses_and_writes_nothing(replica: Replica) -> None:
    task = await replica.running_with_segments_held()
    before = replica.snapshot(task.id)
    replica.leases.failing = True

    await replica.leases.run_ended(task.id)
    # Stopped while the lease was still live: no other replica could have claimed the task yet.
    assert replica.leases.live_when_released[task.id], "the run outlived its lease"
    await the_run_stopped_and_wrote_nothing(replica, task, before)
