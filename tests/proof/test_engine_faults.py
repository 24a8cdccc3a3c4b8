"""Engine faults: connections dropped mid-body, lying Content-Length, origins that stall forever, a full disk."""

from __future__ import annotations

import asyncio
import errno
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from download_server.domain.models import SegmentStatus, Task, TaskStatus
from download_server.engine.files import sinks as files
from download_server.engine.files.layout import Storage
from download_server.engine.settings import EngineSettings
from tests.download.engine.conftest import ENGINE, FAST, Harness
from tests.support.media import sha256
from tests.support.origin import Fault, Origin

SEG = "hls_ts/seg{:02d}.ts"
# Small read timeout and three attempts: a stalled origin costs well under a second per attempt.
STALL = replace(ENGINE, fetch=replace(FAST, read_timeout=0.3, max_attempts=3))
HANG_BOUND = 60.0  # far above what any run here needs; reached only if something hangs


@pytest.fixture
async def origin(media_fixtures: Path, tmp_path: Path) -> AsyncIterator[Origin]:
    async with Origin.serving(media_fixtures, tmp_path) as served:
        yield served


@pytest.fixture(scope="module")
def expected(media_fixtures: Path) -> list[str]:
    manifest: dict[str, Any] = json.loads((media_fixtures / "manifest.json").read_text())
    return list(manifest["hls_ts"]["segment_sha256"])


@pytest.fixture
async def make_harness(origin: Origin, tmp_path: Path) -> AsyncIterator[Callable[[EngineSettings], Harness]]:
    made: list[Harness] = []

    def make(settings: EngineSettings) -> Harness:
        made.append(Harness(origin, Storage(tmp_path / "storage"), settings))
        return made[-1]

    yield make
    for harness in made:
        await harness.scheduler.close()


async def run_bounded(harness: Harness, task: Task, action: str = "start") -> Task:
    async with asyncio.timeout(HANG_BOUND):
        return await harness.run(task, action=action)


def assert_clean(harness: Harness, task: Task, expected: list[str], done: list[int]) -> None:
    """Exactly the `done` segments are on disk, each byte-identical to the fixture; no temp file anywhere."""
    files_now = harness.segment_files(task)
    assert [f.name for f in files_now] == [f"{i}.ts" for i in done]
    assert [sha256(f) for f in files_now] == [expected[i] for i in done]
    assert not list(harness.storage.root.rglob("*.part"))


# Connections dropped mid-body


@pytest.mark.parametrize("kind", ["truncate", "reset"])
async def test_a_body_cut_short_is_retried_until_whole(
    make_harness: Callable[[EngineSettings], Harness], expected: list[str], kind: str
) -> None:
    harness = make_harness(ENGINE)
    harness.origin.add(SEG.format(2), Fault(kind, times=2))
    task = await harness.create("hls_ts/index.m3u8")
    done = await run_bounded(harness, task)

    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert_clean(harness, task, expected, list(range(6)))
    segments = {s.index: s for s in await harness.store.list_segments(task.id)}
    # Three requests; a reset costs one attempt of ours or fewer (aiohttp itself retries a reset once).
    assert harness.origin.requests[SEG.format(2)] == 3 and harness.origin.completed[SEG.format(2)] == 1
    assert segments[2].attempts >= 2
    assert all(segments[i].attempts == 1 for i in (0, 1, 3, 4, 5))
    assert await harness.store.task_failures(task.id) == []


async def test_a_body_always_cut_short_fails_after_the_policy_s_attempts(
    make_harness: Callable[[EngineSettings], Harness], expected: list[str]
) -> None:
    harness = make_harness(ENGINE)
    harness.origin.truncate(SEG.format(4), times=None)
    task = await harness.create("hls_ts/index.m3u8")
    done = await run_bounded(harness, task)

    assert done.status is TaskStatus.PARTIAL_COMPLETED
    [failure] = await harness.store.task_failures(task.id)
    assert (failure.segment_index, failure.error_type) == (4, "truncated")
    # The final sweep (issue 19) tries a retryable failure again: every request counted, more than one policy's worth.
    assert failure.attempts == harness.origin.requests[SEG.format(4)] > FAST.max_attempts
    assert_clean(harness, task, expected, [0, 1, 2, 3, 5])


# Wrong Content-Length (an origin of raw sockets: a real HTTP server would not send a lying header)


class LyingOrigin:
    """HTTP/1.1 with keep-alive over bare sockets; `lies[path]` is added to the true Content-Length."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lies: dict[str, int] = {}
        self.requests: Counter[str] = Counter()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def __aenter__(self) -> LyingOrigin:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode().lstrip("/")
                self.requests[path] += 1
                data = (self.root / path).read_bytes()
                declared = len(data) + self.lies.get(path, 0)
                header = f"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: {declared}\r\n\r\n"
                writer.write(header.encode() + data)
                await writer.drain()
                if declared > len(data):
                    break  # the promised rest never comes: the origin hangs up
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


def playlist_at(origin: Origin, lying: LyingOrigin) -> str:
    """A copy of hls_ts/index.m3u8 whose segments live on the lying origin."""
    text = (origin.root / "hls_ts/index.m3u8").read_text()
    for i in range(6):
        text = text.replace(f"seg{i:02d}.ts", lying.url(SEG.format(i)))
    origin.write("lying/index.m3u8", text.encode())
    return "lying/index.m3u8"


async def test_a_content_length_longer_than_the_body_is_a_truncation(
    make_harness: Callable[[EngineSettings], Harness], origin: Origin, expected: list[str]
) -> None:
    harness = make_harness(ENGINE)
    async with LyingOrigin(origin.root) as lying:
        lying.lies[SEG.format(1)] = 1000
        task = await harness.create(playlist_at(origin, lying))
        done = await run_bounded(harness, task)

    assert done.status is TaskStatus.PARTIAL_COMPLETED
    [failure] = await harness.store.task_failures(task.id)
    assert (failure.segment_index, failure.error_type) == (1, "truncated")
    # The final sweep (issue 19) tries a retryable failure again: every request counted, more than one policy's worth.
    assert failure.attempts == lying.requests[SEG.format(1)] > FAST.max_attempts
    assert_clean(harness, task, expected, [0, 2, 3, 4, 5])


async def test_a_content_length_shorter_than_the_body_is_refused_and_never_poisons_another(
    make_harness: Callable[[EngineSettings], Harness], origin: Origin, expected: list[str]
) -> None:
    # One worker: every segment follows the lying one on the same kept-alive connection.
    harness = make_harness(replace(ENGINE, segment_concurrency=1))
    async with LyingOrigin(origin.root) as lying:
        lying.lies[SEG.format(1)] = -100
        task = await harness.create(playlist_at(origin, lying))
        done = await run_bounded(harness, task)

    # The bytes past the declared length are read as the start of a next response: aiohttp refuses them, so
    # the short segment is never saved as whole. The failure says so briefly (not 100 KB of quoted binary),
    # and no other segment ever sees those bytes.
    assert done.status is TaskStatus.PARTIAL_COMPLETED
    [failure] = await harness.store.task_failures(task.id)
    assert (failure.segment_index, failure.error_type, failure.http_status) == (1, "bad_content", 0)
    # The final sweep (issue 19) tries a retryable failure again: every request counted, more than one policy's worth.
    assert failure.attempts == lying.requests[SEG.format(1)] > FAST.max_attempts
    assert "malformed HTTP response" in failure.error_message and len(failure.error_message) <= 300
    assert len(done.last_error) <= 320
    assert_clean(harness, task, expected, [0, 2, 3, 4, 5])


# Origins that stall forever


@pytest.mark.parametrize("where", ["before_headers", "mid_body"])
async def test_a_stalled_origin_times_out_each_attempt_and_the_run_ends(
    make_harness: Callable[[EngineSettings], Harness], expected: list[str], where: str
) -> None:
    harness = make_harness(STALL)
    if where == "before_headers":
        harness.origin.add(SEG.format(3), Fault("gate", None, gate=asyncio.Event()))  # never set while running
    else:
        harness.origin.stall(SEG.format(3), delay=3600, times=None)
    task = await harness.create("hls_ts/index.m3u8")
    done = await run_bounded(harness, task)

    assert done.status is TaskStatus.PARTIAL_COMPLETED
    [failure] = await harness.store.task_failures(task.id)
    assert (failure.segment_index, failure.error_type) == (3, "timeout")
    # The final sweep (issue 19) tries a retryable failure again: every request counted, more than one policy's worth.
    assert failure.attempts == harness.origin.requests[SEG.format(3)] > STALL.fetch.max_attempts
    assert_clean(harness, task, expected, [0, 1, 2, 4, 5])


async def test_a_stalled_playlist_fails_the_task_without_hanging(
    make_harness: Callable[[EngineSettings], Harness],
) -> None:
    harness = make_harness(STALL)
    harness.origin.add("hls_ts/index.m3u8", Fault("gate", None, gate=asyncio.Event()))
    task = await harness.create("hls_ts/index.m3u8")
    done = await run_bounded(harness, task)

    assert done.status is TaskStatus.FAILED
    [failure] = await harness.store.task_failures(task.id)
    assert (failure.segment_index, failure.error_type, failure.attempts) == (-1, "timeout", STALL.fetch.max_attempts)


# A full disk


def fill_disk_for(monkeypatch: pytest.MonkeyPatch, doomed: Callable[[int], bool]) -> list[str]:
    """Writes of the doomed segments' temp files put half their bytes down, then fail with ENOSPC."""
    real = files._write_all
    hits: list[str] = []

    def write_all(fd: int, data: bytes) -> None:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.endswith(".ts.part") and doomed(int(name.split(".")[0])):
            hits.append(name)
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(files, "_write_all", write_all)
    return hits


async def test_a_full_disk_fails_the_segments_it_hits_and_spares_what_is_saved(
    make_harness: Callable[[EngineSettings], Harness], expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = make_harness(replace(ENGINE, segment_concurrency=1))
    hits = fill_disk_for(monkeypatch, lambda index: index >= 3)
    task = await harness.create("hls_ts/index.m3u8")
    done = await run_bounded(harness, task)

    assert done.status is TaskStatus.PARTIAL_COMPLETED and hits
    failures = await harness.store.task_failures(task.id)
    assert [(f.segment_index, f.error_type) for f in failures] == [(i, "disk_full") for i in (3, 4, 5)]
    assert all(f.attempts == 1 and "disk is full" in f.error_message for f in failures)  # never retried
    segments = {s.index: s for s in await harness.store.list_segments(task.id)}
    assert [segments[i].status for i in range(6)] == [SegmentStatus.DONE] * 3 + [SegmentStatus.FAILED] * 3
    assert_clean(harness, task, expected, [0, 1, 2])  # the half-written temp files are gone, never counted
    assert harness.store.videos[task.id].segment_count == 3  # the local playlist lists only whole segments

    # Space comes back: a retry fetches only what failed, and the whole stream is byte-identical.
    monkeypatch.undo()
    retried = await run_bounded(harness, task, action="retry")
    assert retried.status is TaskStatus.COMPLETED, retried.last_error
    assert_clean(harness, task, expected, list(range(6)))
    assert [harness.origin.completed[SEG.format(i)] for i in range(6)] == [1, 1, 1, 2, 2, 2]
