"""The losing side of a lease on SQLite and PostgreSQL: once another replica's claim has replaced this run's
lease token in the tasks table, the run stops at its next renewal and writes nothing more: no task, segment,
failure or video row, no file, and its late release leaves the new claim alone."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import create_engine, select, update
from sqlalchemy.pool import NullPool

from download_server.adapters.orm import FailureRow, SegmentRow, TaskRow, VideoRow
from download_server.domain.models import SegmentStatus, utcnow
from download_server.engine.settings import EngineSettings
from tests.download.engine_api.conftest import ServerFactory
from tests.download.engine_api.flows import TS, seg, until

HELD = (3, 4, 5)


def longer_reads(engine: EngineSettings) -> EngineSettings:
    # The held requests must outlast the takeover: no read timeout and retry may end them first.
    return replace(engine, fetch=replace(engine.fetch, read_timeout=60.0))


def rows(database_url: str, task_id: str) -> dict[str, Any]:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            found: dict[str, Any] = {}
            for name, table, key in (
                ("task", TaskRow, TaskRow.id),
                ("segments", SegmentRow, SegmentRow.task_id),
                ("failures", FailureRow, FailureRow.task_id),
                ("videos", VideoRow, VideoRow.task_id),
            ):
                result = conn.execute(select(table.__table__).where(key == task_id)).mappings().all()
                found[name] = sorted((dict(row) for row in result), key=repr)
            return found
    finally:
        engine.dispose()


def take_over(database_url: str, task_id: str) -> None:
    """What another replica's claim writes: its own token, owner and expiry on the task's row."""
    later = utcnow() + timedelta(minutes=5)
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id)
                .values(
                    lease_token="token-of-replica-b",
                    lease_owner="replica-b",
                    lease_expires=later,
                )
            )
    finally:
        engine.dispose()


async def test_a_run_whose_lease_another_replica_took_stops_and_writes_nothing(
    serve: ServerFactory, database_url: str
) -> None:
    async with serve(database_url, engine_overrides=longer_reads, DOWNLOAD_LEASE_SECONDS="3") as flows:
        origin = flows.origin
        gates = [origin.gate(seg(i)) for i in HELD]
        task = await flows.create(TS)
        stream = flows.start_stream(task.id)
        try:
            await until(stream, lambda e: e.segments_done == 3)
            for i in HELD:
                await asyncio.wait_for(origin.wait_requests(seg(i), 1), timeout=30)
            for _ in range(300):  # segments 0-2 reach the database on the tracker's next flush
                saved = await flows.api.store.list_segments(task.id)
                if [s.status for s in saved].count(SegmentStatus.DONE) == 3:
                    break
                await asyncio.sleep(0.05)
            await asyncio.to_thread(take_over, database_url, task.id)
            before = await asyncio.to_thread(rows, database_url, task.id)
            files = sorted(p.name for p in flows.segment_files(task.id))

            # The run stops at its next renewal and hangs up on the held requests (no answer was sent).
            for i in HELD:
                await asyncio.wait_for(origin.wait_settled(seg(i)), timeout=30)
            for gate in gates:
                gate.set()
        finally:
            stream.cancel()

        assert [origin.completed[seg(i)] for i in HELD] == [0, 0, 0]
        assert await asyncio.to_thread(rows, database_url, task.id) == before
        assert sorted(p.name for p in flows.segment_files(task.id)) == files == ["0.ts", "1.ts", "2.ts"]
        assert before["task"][0]["lease_owner"] == "replica-b"
