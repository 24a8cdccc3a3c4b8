"""No poison task: unexpected exceptions end runs FAILED and, three in a row, quarantine the task; a task
re-claimed after an interrupted run waits a short, growing back-off (issue 15, finding 1)."""

from __future__ import annotations

import asyncio

import pytest

from download_server.domain.models import TaskStatus
from download_server.engine.jobs.hls import HlsJob
from download_server.engine.jobs.ledger import RunLedger
from tests.download.engine.conftest import Harness


async def test_three_unexpected_exceptions_in_a_row_quarantine_the_task(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    async def broken(self: HlsJob, ctx: RunLedger) -> None:
        nonlocal calls
        calls += 1
        raise KeyError("a bug the origin found")

    monkeypatch.setattr(HlsJob, "run", broken)
    task = await harness.create("hls_ts/index.m3u8")
    async with asyncio.timeout(30):
        done = await harness.run(task)
        assert (done.status, done.crash_count, calls) == (TaskStatus.FAILED, 1, 1)
        assert "internal error (KeyError" in done.last_error and "[incident " in done.last_error
        for expected in (2, 3):
            done = await harness.run(task, action="retry")
            assert (done.status, done.crash_count, calls) == (TaskStatus.FAILED, expected, expected)
        assert done.last_error.startswith("quarantined: 3 runs in a row ended in an internal error")
        done = await harness.run(task, action="retry")  # not run again
    assert (done.status, calls) == (TaskStatus.FAILED, 3)
    assert harness.last_events[-1].message.startswith("failed: quarantined")


async def test_a_run_that_ends_by_itself_clears_the_streak(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    real = HlsJob.run
    failing = True

    async def flaky(self: HlsJob, ctx: RunLedger) -> None:
        if failing:
            raise KeyError("once")
        await real(self, ctx)

    monkeypatch.setattr(HlsJob, "run", flaky)
    task = await harness.create("hls_ts/index.m3u8")
    assert (await harness.run(task)).crash_count == 1
    failing = False
    done = await harness.run(task, action="retry")
    assert (done.status, done.crash_count, done.reclaims) == (TaskStatus.COMPLETED, 0, 0)


async def test_a_task_re_claimed_after_an_interrupted_run_backs_off(harness: Harness) -> None:
    task = await harness.create("hls_ts/index.m3u8")
    stored = await harness.store.get_task(task.id)
    # As a process death leaves it: PROCESSING, claimed twice since a run last ended, no live lease.
    stored.status, stored.reclaims = TaskStatus.PROCESSING, 2
    await harness.store.save_task(stored)
    with harness.broker.subscribe(task_id=task.id) as sub:
        await harness.scheduler.recover()
        messages = []
        async with asyncio.timeout(30):
            async for event in sub:
                messages.append(event.message)
                if event.status.ends_stream:
                    break
    assert any(m.startswith("resuming after an interrupted run in 0.1s") for m in messages), messages
    done = await harness.store.get_task(task.id)
    assert (done.status, done.reclaims) == (TaskStatus.COMPLETED, 0)
