"""A flaky CDN costs the user nothing (the final sweep); an origin down for everyone fails the run early."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace

import pytest

from download_server.domain.models import FailureStatus, TaskStatus
from download_server.engine.settings import EngineSettings
from tests.download.engine.conftest import ENGINE, Harness
from tests.support.origin import Origin

SEGMENTS = 120


def _stream(origin: Origin, folder: str, count: int = SEGMENTS) -> list[bytes]:
    """A VOD playlist of `count` tiny segments (distinct bytes each) served by the origin."""
    bodies = [hashlib.sha256(f"{folder}-{i}".encode()).digest() * 8 for i in range(count)]
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0"]
    for i, body in enumerate(bodies):
        origin.write(f"{folder}/seg{i}.ts", body)
        lines += ["#EXTINF:1.0,", f"seg{i}.ts"]
    origin.write(f"{folder}/index.m3u8", "\n".join([*lines, "#EXT-X-ENDLIST", ""]).encode())
    return bodies


def _flaky_engine() -> EngineSettings:
    fetch = replace(ENGINE.fetch, backoff_base=0.002, backoff_max=0.01, circuit_cooldown=0.05)
    return replace(ENGINE, segment_concurrency=8, fetch=fetch, sweep_seconds=30.0)


@pytest.mark.parametrize(("rate", "runs"), [(0.3, 20), (0.4, 3)])
async def test_a_flaky_cdn_completes_every_run(origin: Origin, storage: object, rate: float, runs: int) -> None:
    """2 of 3 faults a 503 (Retry-After: 0), 1 of 3 a reset: 20% + 10% of attempts fail at rate 0.3."""
    harness = Harness(origin, storage, _flaky_engine())  # type: ignore[arg-type]
    try:
        bodies = _stream(origin, "flaky")
        origin.chaos(prefix="flaky/seg", rate=rate, seed=19, kinds=("503", "503", "reset"), max_consecutive=1000)
        swept = 0
        for _ in range(runs):
            task = await harness.create("flaky/index.m3u8")
            done = await harness.run(task)
            assert done.status is TaskStatus.COMPLETED, (done.last_error, [e.message for e in harness.last_events])
            assert [f.read_bytes() for f in harness.segment_files(task)] == bodies
            failures = await harness.store.task_failures(task.id)
            assert all(f.status is FailureStatus.RESOLVED and f.attempts > ENGINE.fetch.max_attempts for f in failures)
            swept += len(failures)
        fetched = sum(n for path, n in origin.requests.items() if path.startswith("flaky/seg"))
        served = sum(n for path, n in origin.completed.items() if path.startswith("flaky/seg"))
        print(f"rate {rate}: {runs} runs, {fetched} requests, {served} served, {swept} swept segment(s)")
        if rate >= 0.3:
            assert swept > 0  # the sweep did work: without it these runs ended PARTIAL_COMPLETED
    finally:
        await harness.scheduler.close()


async def test_the_sweep_says_what_it_retries_and_resolves_the_record(harness: Harness) -> None:
    _stream(harness.origin, "one", count=6)
    harness.origin.fail("one/seg3.ts", status=503, times=ENGINE.fetch.max_attempts)
    task = await harness.create("one/index.m3u8")
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED
    host = f"127.0.0.1:{harness.origin.port}"
    assert any(e.message == f"retrying 1 failed segment: 1 x HTTP 503 from {host}" for e in harness.last_events)
    assert harness.last_events[-1].message.endswith("final sweep: 1 of 1 failed segment(s) recovered")
    (failure,) = await harness.store.task_failures(task.id)
    assert (failure.status, failure.attempts, failure.http_status) == (FailureStatus.RESOLVED, 5, 503)


async def test_permanent_errors_are_not_swept(harness: Harness) -> None:
    _stream(harness.origin, "gone", count=4)
    harness.origin.fail("gone/seg1.ts", status=404)
    harness.origin.fail("gone/seg2.ts", status=410)
    task = await harness.create("gone/index.m3u8")
    done = await harness.run(task)

    assert done.status is TaskStatus.PARTIAL_COMPLETED
    assert (harness.origin.requests["gone/seg1.ts"], harness.origin.requests["gone/seg2.ts"]) == (1, 1)
    assert not any("retrying" in e.message for e in harness.last_events)


async def test_an_origin_down_for_everything_fails_early(origin: Origin, storage: object) -> None:
    harness = Harness(origin, storage, _flaky_engine())  # type: ignore[arg-type]
    try:
        _stream(origin, "down")
        origin.chaos(prefix="down/seg", rate=1.0, seed=1, kinds=("503",), max_consecutive=10**9)
        task = await harness.create("down/index.m3u8")
        async with asyncio.timeout(60):  # a hang guard, not a measurement
            done = await harness.run(task)

        assert done.status is TaskStatus.FAILED
        failures = await harness.store.task_failures(task.id)
        assert sorted(f.segment_index for f in failures) == list(range(SEGMENTS))
        requests = sum(n for path, n in origin.requests.items() if path.startswith("down/seg"))
        print(f"origin down: {requests} requests for {SEGMENTS} segments x {ENGINE.fetch.max_attempts} attempts")
        assert requests < SEGMENTS  # fewer than one per segment, let alone segments x attempts
        assert any("failing every request (circuit open" in e.message for e in harness.last_events)
    finally:
        await harness.scheduler.close()


async def test_a_trickling_origin_is_aborted_and_retried_like_a_timeout(origin: Origin, storage: object) -> None:
    """Finding 3 of issue 15: one byte every few seconds never tripped the read timeout and held a slot."""
    fetch = replace(ENGINE.fetch, min_rate_bytes=200.0, min_rate_window=0.3)
    harness = Harness(origin, storage, replace(ENGINE, fetch=fetch))  # type: ignore[arg-type]
    try:
        _stream(origin, "trickle", count=3)
        origin.trickle("trickle/seg1.ts", delay=0.05)  # 20 B/s: never silent for the 2 s read timeout
        task = await harness.create("trickle/index.m3u8")
        async with asyncio.timeout(30):
            done = await harness.run(task)
        assert done.status is TaskStatus.COMPLETED
        segments = await harness.store.list_segments(task.id)
        assert [s.attempts for s in segments] == [1, 2, 1]
        assert origin.requests["trickle/seg1.ts"] == 2
    finally:
        await harness.scheduler.close()


async def test_a_run_that_crosses_the_user_quota_stops_fetching_with_records(origin: Origin, storage: object) -> None:
    settings = replace(ENGINE, segment_concurrency=1, user_quota_bytes=3 * 256)
    harness = Harness(origin, storage, settings)  # type: ignore[arg-type]
    try:
        bodies = _stream(origin, "quota", count=6)
        assert {len(b) for b in bodies} == {256}
        task = await harness.create("quota/index.m3u8")
        done = await harness.run(task)
        assert (done.status, done.segments_done, done.bytes_downloaded) == (TaskStatus.PARTIAL_COMPLETED, 3, 768)
        failures = await harness.store.task_failures(task.id)
        assert [(f.segment_index, f.error_type, f.attempts) for f in failures] == [
            (i, "quota_exceeded", 0) for i in (3, 4, 5)
        ]
        assert not any(origin.requests[f"quota/seg{i}.ts"] for i in (3, 4, 5))  # nothing fetched past it
    finally:
        await harness.scheduler.close()
