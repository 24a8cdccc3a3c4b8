"""Three download replicas (real processes) on one PostgreSQL database: tasks spread over them and run exactly
once, any replica streams any task's events, and commands reach the replica that runs the task."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mediadl.download.v1 import download_pb2 as pb
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.scale.cluster import (
    Cluster,
    connected,
    events_until_end,
    hls_copies,
    seg,
    start_replicas,
    stop_replicas,
    until,
)
from tests.support.origin import Origin

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
# "Takes effect within a second" (issue 7): PauseTask through another replica returns once the owner has
# stopped the run and persisted PAUSED.
PAUSE_DEADLINE = 1.0


@pytest.fixture
def manifest(media_fixtures: Path) -> dict[str, Any]:
    return dict(json.loads((media_fixtures / "manifest.json").read_text()))


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One set of replicas for this module's tests (starting processes is what costs); each test its own tasks."""
    database_url = create_postgres_database()
    try:
        # Nothing here waits for a lease to lapse: longer leases keep a loaded machine from moving tasks.
        started = start_replicas(database_url, tmp_path_factory.mktemp("replicas"), DOWNLOAD_LEASE_SECONDS="6")
        try:
            yield started
        finally:
            stop_replicas(started)
    finally:
        drop_postgres_database(database_url)


@pytest.fixture
async def c(replicas: Cluster) -> AsyncIterator[Cluster]:
    async with connected(replicas) as ready:
        yield ready


def distinct(events: list[pb.TaskEvent]) -> list[tuple[int, int]]:
    """(status, segments_done) in order, repeats (heartbeats) folded."""
    seen: list[tuple[int, int]] = []
    for event in events:
        if not seen or seen[-1] != (event.status, event.segments_done):
            seen.append((event.status, event.segments_done))
    return seen


async def test_many_tasks_spread_over_three_replicas_and_each_runs_exactly_once(
    c: Cluster, media_fixtures: Path, tmp_path: Path, manifest: dict[str, Any]
) -> None:
    async with Origin.serving(media_fixtures, tmp_path) as origin:
        streams = hls_copies(origin, 12)
        for stream in streams:
            for i in range(6):
                origin.slow(seg(stream, i), delay=0.1)  # each task takes a while: the slots fill up
        tasks = [await c.create("a", origin.url(path)) for path in streams]
        # A dashboard on replica C follows every task, wherever it runs.
        dashboard = c["c"].stub.WatchTasks(pb.WatchTasksRequest(), metadata=c.md(), timeout=120)
        assert len([await dashboard.read() for _ in tasks]) == len(tasks)  # the current states first
        for task in tasks:  # all started through replica A, which runs only two at a time
            assert (await until(c.start("a", task.id), lambda e: True)).status in (
                pb.TASK_STATUS_PROCESSING,
                pb.TASK_STATUS_PENDING,
            )
        ended: dict[str, pb.TaskEvent] = {}
        progress: dict[str, list[float]] = {}
        while len(ended) < len(tasks):
            event = (await dashboard.read()).event
            progress.setdefault(event.task_id, []).append(event.progress)
            if event.status in (pb.TASK_STATUS_COMPLETED, pb.TASK_STATUS_PARTIAL_COMPLETED, pb.TASK_STATUS_FAILED):
                ended[event.task_id] = event
        dashboard.cancel()

        assert {e.status for e in ended.values()} == {pb.TASK_STATUS_COMPLETED}
        for task in tasks:
            assert progress[task.id] == sorted(progress[task.id])
            assert (await c.get("b", task.id)).status == pb.TASK_STATUS_COMPLETED
            assert c.segment_hashes(task.id) == manifest["hls_ts"]["segment_sha256"]
        # Exactly once: each playlist planned once, each segment body served once, each task claimed once.
        for stream in streams:
            assert origin.requests[stream] == 1
            assert [origin.completed[seg(stream, i)] for i in range(6)] == [1] * 6
        ids = {task.id for task in tasks}
        claims = {r.name: [t for t in r.claimed() if t in ids] for r in c.replicas.values()}
        assert sorted(t for claimed in claims.values() for t in claimed) == sorted(ids)
        leases = {task_id: lease for task_id, lease in (await c.leases()).items() if task_id in ids}
        owners = {owner for owner, _ in leases.values()}
        assert len(owners) >= 2, f"work was not spread: {owners}"
        assert {f"replica-{name}" for name, claimed in claims.items() if claimed} == owners
        assert all(token is None for _, token in leases.values())  # every lease released


async def test_a_watch_on_one_replica_streams_a_download_running_on_another(
    c: Cluster, media_fixtures: Path, tmp_path: Path
) -> None:
    async with Origin.serving(media_fixtures, tmp_path) as origin:
        [stream] = hls_copies(origin, 1)
        for i in range(6):
            origin.slow(seg(stream, i), delay=0.3)
        task = await c.create("a", origin.url(stream))
        on_b = c.start("b", task.id)  # B has free slots: it claims the task before StartTask answers
        first = await until(on_b, lambda e: True)
        assert first.status == pb.TASK_STATUS_PROCESSING
        assert (await c.leases())[task.id][0] == "replica-b"

        watched, local = await asyncio.gather(events_until_end(c.watch("a", task.id)), events_until_end(on_b))
        local = [first, *local]

        assert watched[-1].status == pb.TASK_STATUS_COMPLETED and watched[-1].segments_done == 6
        assert [e.segments_done for e in watched] == sorted(e.segments_done for e in watched)
        # Every state B's own stream showed from where A's began, A showed too: nothing lost on the way.
        start = local.index(next(e for e in local if e.segments_done == watched[0].segments_done))
        assert distinct(watched) == distinct(local[start:])
        assert len(distinct(watched)) >= 5  # progress arrived while it ran, not only the end
        assert (await c.leases())[task.id] == ("replica-b", None)  # B ran it all, and let go


async def test_pause_through_c_of_a_task_running_on_b_takes_effect_within_a_second(
    c: Cluster, media_fixtures: Path, tmp_path: Path, manifest: dict[str, Any]
) -> None:
    async with Origin.serving(media_fixtures, tmp_path) as origin:
        [stream] = hls_copies(origin, 1)
        origin.gate(seg(stream, 3))  # the run waits here when the pause comes
        task = await c.create("a", origin.url(stream))
        on_b = c.start("b", task.id)
        await until(on_b, lambda e: e.segments_done == 3)
        await asyncio.wait_for(origin.wait_requests(seg(stream, 3), 1), timeout=30)

        asked = time.monotonic()
        reply = await asyncio.wait_for(
            c["c"].stub.PauseTask(pb.PauseTaskRequest(task_id=task.id), metadata=c.md()), timeout=PAUSE_DEADLINE
        )
        took = time.monotonic() - asked
        print(f"PauseTask through C answered PAUSED after {took:.3f} s")
        assert (reply.task.status, reply.task.segments_done) == (pb.TASK_STATUS_PAUSED, 3), f"after {took:.3f}s"
        assert (await events_until_end(on_b))[-1].status == pb.TASK_STATUS_PAUSED  # B's own stream saw it
        assert (await c.leases())[task.id] == ("replica-b", None)  # B stopped and let go

        resumed = await c["a"].stub.ResumeTask(pb.ResumeTaskRequest(task_id=task.id), metadata=c.md())
        assert resumed.task.status == pb.TASK_STATUS_PROCESSING  # A had a free slot: it runs it now
        assert (await events_until_end(c.watch("c", task.id)))[-1].status == pb.TASK_STATUS_COMPLETED
        assert [origin.completed[seg(stream, i)] for i in range(6)] == [1] * 6
        assert c.segment_hashes(task.id) == manifest["hls_ts"]["segment_sha256"]
        assert (await c.leases())[task.id][0] == "replica-a"


async def test_cancel_delete_and_retry_through_other_replicas(
    c: Cluster, media_fixtures: Path, tmp_path: Path, manifest: dict[str, Any]
) -> None:
    async with Origin.serving(media_fixtures, tmp_path) as origin:
        cancelled, deleted, failing = hls_copies(origin, 3)
        gates = [origin.gate(seg(stream, 2)) for stream in (cancelled, deleted)]
        origin.fail(seg(failing, 4), status=404)
        tasks = {path: await c.create("a", origin.url(path)) for path in (cancelled, deleted, failing)}
        on_b = {path: c.start("b", tasks[path].id) for path in (cancelled, deleted)}
        for path in (cancelled, deleted):
            await asyncio.wait_for(origin.wait_requests(seg(path, 2), 1), timeout=30)

        # CancelTask through A, DeleteTask through C: B stops both, and its streams are told.
        reply = await c["a"].stub.CancelTask(pb.CancelTaskRequest(task_id=tasks[cancelled].id), metadata=c.md())
        assert reply.task.status == pb.TASK_STATUS_CANCELLED
        assert (await events_until_end(on_b[cancelled]))[-1].status == pb.TASK_STATUS_CANCELLED
        await c["c"].stub.DeleteTask(
            pb.DeleteTaskRequest(task_id=tasks[deleted].id, delete_files=True), metadata=c.md()
        )
        last = (await events_until_end(on_b[deleted]))[-1]
        assert (last.status, last.message) == (pb.TASK_STATUS_CANCELLED, "deleted")
        assert tasks[deleted].id not in await c.leases()
        assert not (c.storage / "hls" / tasks[deleted].id).exists()

        # A task that ended partial on B is retried through C: only its failed segment is fetched again.
        assert (await events_until_end(c.start("b", tasks[failing].id)))[-1].status == pb.TASK_STATUS_PARTIAL_COMPLETED
        origin.heal(seg(failing, 4))
        retried = await events_until_end(
            c["c"].stub.RetryTask(pb.RetryTaskRequest(task_id=tasks[failing].id), metadata=c.md())
        )
        assert retried[-1].status == pb.TASK_STATUS_COMPLETED
        assert [origin.requests[seg(failing, i)] for i in range(6)] == [1, 1, 1, 1, 2, 1]
        assert c.segment_hashes(tasks[failing].id) == manifest["hls_ts"]["segment_sha256"]
        # Nothing ran after it was stopped: once the origin may answer and the held requests of the cancelled
        # and deleted tasks are over, neither was read to the end, and no file of the deleted task came back.
        for gate in gates:
            gate.set()
        for path in (cancelled, deleted):
            await asyncio.wait_for(origin.wait_settled(seg(path, 2)), timeout=30)
        assert [origin.completed[seg(path, 2)] for path in (cancelled, deleted)] == [0, 0]
        assert not (c.storage / "hls" / tasks[deleted].id).exists()
        assert not (c.storage / "hls" / tasks[cancelled].id / "ts" / "2.ts").exists()
