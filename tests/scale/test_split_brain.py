"""Split brain: a replica paused (SIGSTOP) mid-download whose lease lapses and is taken by another replica
must, once woken (SIGCONT), write nothing for that task: no task or segment row, no failure or video, no
file, no event. The other replica's finished download stays exactly as it left it."""

from __future__ import annotations

import asyncio
import hashlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from download_server.adapters.orm import FailureRow, SegmentRow, TaskRow, VideoRow
from mediadl.download.v1 import download_pb2 as pb
from tests.scale.cluster import Cluster, cluster, events_until_end, hls_copies, seg, until
from tests.support.origin import Origin

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
WOKEN = ("lost the lease of a running task", "lease about to lapse unrenewed")


def stored(database_url: str, task_id: str) -> dict[str, Any]:
    """Every row of the task as stored: the task, its segments, failures and videos, column by column."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows: dict[str, Any] = {}
            for name, table, key in (
                ("task", TaskRow, TaskRow.id),
                ("segments", SegmentRow, SegmentRow.task_id),
                ("failures", FailureRow, FailureRow.task_id),
                ("videos", VideoRow, VideoRow.task_id),
            ):
                found = conn.execute(select(table.__table__).where(key == task_id)).mappings().all()
                rows[name] = sorted((dict(row) for row in found), key=repr)
            return rows
    finally:
        engine.dispose()


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, int, str, Any, Any]]:
    """(table, row, column, before, after) for every stored value that changed; rows added or gone too."""
    found = []
    for table, rows in after.items():
        old = before[table]
        if len(rows) != len(old):
            found.append((table, -1, "rows", len(old), len(rows)))
            continue
        for n, (was, now) in enumerate(zip(old, rows, strict=True)):
            found += [(table, n, column, was[column], now[column]) for column in now if now[column] != was[column]]
    return found


def files(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under the task's folder: its sha256 and its modification time."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


async def collect(call: Any, into: list[pb.TaskEvent], changed: asyncio.Condition) -> None:
    async for response in call:
        async with changed:
            into.append(response.event)
            changed.notify_all()


async def seen(events: list[pb.TaskEvent], changed: asyncio.Condition, predicate: Callable[[Any], bool]) -> None:
    async with asyncio.timeout(60), changed:
        await changed.wait_for(lambda: any(predicate(e) for e in events))


async def log_says(c: Cluster, name: str, words: tuple[str, ...]) -> None:
    """Wait until the replica's log has one of `words` (its only sign of what it did on waking)."""
    for _ in range(600):
        if any(w in c[name].log() for w in words):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"replica {name} never logged any of {words}:\n{c[name].log()[-3000:]}")


async def test_a_paused_replica_woken_after_its_lease_was_taken_writes_nothing(
    make_database_url: Callable[[str], str], media_fixtures: Path, tmp_path: Path
) -> None:
    database = make_database_url("postgresql")
    async with Origin.serving(media_fixtures, tmp_path) as origin, cluster(database, tmp_path, ("a", "b")) as c:
        [stream] = hls_copies(origin, 1)
        held = origin.hold(seg(stream, 3))  # B gets half of segment 3, then waits for the rest
        task = await c.create("a", origin.url(stream))
        events: list[pb.TaskEvent] = []
        changed = asyncio.Condition()
        everything = c["a"].stub.WatchTasks(pb.WatchTasksRequest(), metadata=c.md(), timeout=300)
        collecting = asyncio.ensure_future(collect(everything, events, changed))
        try:
            await until(c.start("b", task.id), lambda e: e.status == pb.TASK_STATUS_PROCESSING)
            await asyncio.wait_for(origin.wait_requests(seg(stream, 3), 1), timeout=30)

            c["b"].proc.send_signal(signal.SIGSTOP)  # paused mid-body, lease and all
            done = await asyncio.wait_for(events_until_end(c.watch("a", task.id)), timeout=90)
            assert done[-1].status == pb.TASK_STATUS_COMPLETED  # A claimed the lapsed lease and finished
            await seen(events, changed, lambda e: e.task_id == task.id and e.status == pb.TASK_STATUS_COMPLETED)
            before_rows = stored(database, task.id)
            before_files = files(c.storage / "hls" / task.id)
            woken_at = len(events)

            c["b"].proc.send_signal(signal.SIGCONT)
            held.set()  # the rest of segment 3 reaches B now, if B still reads it
            await log_says(c, "b", WOKEN)
            await asyncio.wait_for(origin.wait_settled(seg(stream, 3)), timeout=30)
            # A change made through B after it stopped: its event reaches A after any event B sent before it.
            probe = await c.create("b", origin.url(stream))
            await c["b"].stub.CancelTask(pb.CancelTaskRequest(task_id=probe.id), metadata=c.md())
            await seen(events, changed, lambda e: e.task_id == probe.id and e.status == pb.TASK_STATUS_CANCELLED)
        finally:
            collecting.cancel()
            everything.cancel()

        assert c["b"].proc.poll() is None  # B lives on and serves
        assert (await c.get("b", task.id)).status == pb.TASK_STATUS_COMPLETED
        assert (written := changes(before_rows, stored(database, task.id))) == [], "\n".join(map(repr, written))
        assert files(c.storage / "hls" / task.id) == before_files
        assert [e for e in events[woken_at:] if e.task_id == task.id] == []
        owners = await c.leases()
        assert owners[task.id][0] == "replica-a"
