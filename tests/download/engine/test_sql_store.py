"""The engine over the real SqlTaskStore (SQLite and PostgreSQL): the fake's behaviour is the SQL store's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from download_server.domain.models import FailureStatus, SegmentStatus, TaskStatus
from download_server.engine.files.layout import Storage
from download_server.migrations import SCRIPT_LOCATION
from mediadl_common.db import Database, run_migrations
from tests.download.engine.conftest import ENGINE, Harness
from tests.download.helpers import sql_store
from tests.support.media import sha256
from tests.support.origin import Origin


@pytest.fixture
async def sql_harness(database_url: str, origin: Origin, storage: Storage) -> AsyncIterator[Harness]:
    database = Database(database_url, pool_size=4)
    await database.run(run_migrations, database_url, SCRIPT_LOCATION)
    # The harness is typed for the fake; these tests use only the TaskStore port, which both implement.
    harness = Harness(origin, storage, ENGINE, store=sql_store(database))  # type: ignore[arg-type]
    yield harness
    await harness.scheduler.close()
    database.close()


async def test_failures_retry_and_video_through_sql(sql_harness: Harness, manifest: dict[str, Any]) -> None:
    harness = sql_harness
    harness.origin.fail("hls_aes128/seg03.ts", status=404)
    task = await harness.create("hls_aes128/index.m3u8")
    done = await harness.run(task)
    assert (done.status, done.segments_done, done.segments_failed) == (TaskStatus.PARTIAL_COMPLETED, 5, 1)
    [failure] = await harness.store.task_failures(task.id)
    assert (failure.segment_index, failure.http_status, failure.status) == (3, 404, FailureStatus.PENDING)

    harness.origin.heal()
    done = await harness.run(task, action="retry")
    assert (done.status, done.retry_count, done.progress) == (TaskStatus.COMPLETED, 1, 1.0)
    assert (await harness.store.get_failure(failure.id)).status is FailureStatus.RESOLVED
    segments = await harness.store.list_segments(task.id)
    assert [s.status for s in segments] == [SegmentStatus.DONE] * 6
    assert [s.sha256 for s in segments] == manifest["hls_aes128"]["plaintext_segment_sha256"]
    assert [sha256(f) for f in harness.segment_files(task)] == manifest["hls_aes128"]["plaintext_segment_sha256"]
    assert harness.origin.requests["hls_aes128/seg03.ts"] == 2
    assert harness.origin.requests["hls_aes128/seg02.ts"] == 1


async def test_pause_resume_through_sql(sql_harness: Harness) -> None:
    harness = sql_harness
    gates = [harness.origin.gate(f"hls_ts/seg0{i}.ts") for i in (4, 5)]
    task = await harness.create("hls_ts/index.m3u8")
    await harness.start_until(task, lambda e: e.segments_done == 4)
    await harness.scheduler.pause(task.id)
    stored = await harness.store.list_segments(task.id)
    assert [s.status for s in stored].count(SegmentStatus.DONE) == 4
    for gate in gates:
        gate.set()
    done = await harness.run(task, action="resume")
    assert done.status is TaskStatus.COMPLETED
    assert [harness.origin.requests[f"hls_ts/seg0{i}.ts"] for i in range(6)] == [1, 1, 1, 1, 2, 2]
