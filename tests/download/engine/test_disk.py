"""DiskWriter: results and errors reach the awaiting coroutine, at most `threads` run at once, idle threads end."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from download_server.engine.files.disk import DiskWriter
from download_server.engine.files.sinks import FileSink


async def test_results_and_exceptions_reach_the_awaiting_coroutine() -> None:
    writer = DiskWriter()
    assert await writer.run(lambda: 6 * 7) == 42

    def fail() -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        await writer.run(fail)
    assert await writer.run(threading.current_thread) is not threading.current_thread()


async def test_never_more_threads_than_allowed_and_every_job_runs() -> None:
    writer = DiskWriter(threads=2)
    gate = threading.Event()
    lock = threading.Lock()
    running = peak = 0

    def job(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(timeout=10)
        with lock:
            running -= 1
        return n

    futures = [writer.run(functools.partial(job, n)) for n in range(10)]
    await asyncio.sleep(0)  # let the threads pick up what they can before the gate opens
    gate.set()
    assert await asyncio.gather(*futures) == list(range(10))
    assert 1 <= peak <= 2


async def test_idle_threads_end_and_new_work_starts_one_again() -> None:
    writer = DiskWriter(threads=2, idle_seconds=0.05)
    await writer.run(lambda: None)
    assert _wait_for(lambda: writer.thread_count == 0)
    assert await writer.run(lambda: "again") == "again"


async def test_an_abandoned_job_does_not_disturb_the_writer() -> None:
    writer = DiskWriter(threads=1)
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(timeout=10)
        return "late"

    future = writer.run(slow)
    assert await asyncio.to_thread(started.wait, 10)
    future.cancel()  # its awaiter went away; the thread still finishes the job
    release.set()
    assert await writer.run(lambda: "next") == "next"


async def test_file_sink_through_the_writer_creates_the_folder_and_renames_when_whole(tmp_path: Path) -> None:
    final = tmp_path / "deep" / "er" / "7.ts"
    sink = FileSink(final, writer=DiskWriter())
    await sink.begin(keep=False)
    for piece in (b"abc", b"def" * 500_000):  # over 1 MiB: one flush before commit, one at commit
        await sink.write(piece)
    assert not final.exists()
    await sink.commit()
    assert final.read_bytes() == b"abc" + b"def" * 500_000
    assert [p.name for p in final.parent.iterdir()] == ["7.ts"]  # no .part left
    assert sink.size == final.stat().st_size
    assert sink.sha256 == hashlib.sha256(final.read_bytes()).hexdigest()


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    # A thread ending is not an awaitable event; poll it with a deadline.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False
