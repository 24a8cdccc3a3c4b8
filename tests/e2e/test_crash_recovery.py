"""Crash recovery with real processes: `python -m download_server` is SIGKILLed mid-download and started again;
the running task and the one queued behind it complete with identical bytes, and the origin never served a
complete segment twice."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from auth_server.adapters.tokens import JwtIssuer
from mediadl.download.v1 import download_pb2 as pb
from mediadl.download.v1 import download_pb2_grpc
from mediadl_common.config import JwtSettings
from tests.conftest import ROOT
from tests.download.api import SECRET
from tests.support.media import sha256
from tests.support.origin import Origin

pytestmark = pytest.mark.e2e
USER = "crash-test-user"


def seg(i: int) -> str:
    return f"hls_ts/seg{i:02d}.ts"


@dataclass
class ServerProcess:
    proc: asyncio.subprocess.Process
    port: int
    log: list[str] = field(default_factory=list)
    drain: asyncio.Task[None] | None = None

    def stub(self, channel: grpc.aio.Channel) -> Any:
        return download_pb2_grpc.DownloadServiceStub(channel)  # type: ignore[no-untyped-call]


@asynccontextmanager
async def download_server(tmp: Path, **env: str) -> AsyncIterator[ServerProcess]:
    """The server as a real process (port chosen by the OS, read from its log); killed if still alive at the end."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DOWNLOAD_", "STORAGE_", "LOG_"))}
    clean.update(PYTHONPATH=str(ROOT), JWT_SECRET_KEY=SECRET, DOWNLOAD_GRPC_ADDR="127.0.0.1:0", **env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "download_server", cwd=tmp, env=clean, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    stderr = proc.stderr
    server: ServerProcess | None = None
    lines: list[str] = []
    try:
        while server is None:
            line = (await asyncio.wait_for(stderr.readline(), timeout=60)).decode()
            assert line, "download_server exited before listening:\n" + "".join(lines)
            lines.append(line)
            if match := re.search(r"listening on \S+ \(port (\d+)\)", line):
                server = ServerProcess(proc, int(match.group(1)), lines)

        async def drain() -> None:  # a full pipe would block the server's logging
            while line := await stderr.readline():
                lines.append(line.decode())

        server.drain = asyncio.create_task(drain())
        yield server
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        if server is not None and server.drain is not None:
            await server.drain


async def first_event(call: Any) -> pb.TaskEvent:
    async for response in call:
        event: pb.TaskEvent = response.event
        return event
    raise AssertionError("the stream ended without a message")


async def last_event(call: Any) -> pb.TaskEvent:
    events = [response.event async for response in call]
    assert events, "the stream ended without a message"
    last: pb.TaskEvent = events[-1]
    return last


async def test_sigkill_mid_download_then_restart_completes_without_refetching(
    media_fixtures: Path, tmp_path: Path
) -> None:
    manifest = json.loads((media_fixtures / "manifest.json").read_text())
    env = {
        "DOWNLOAD_DATABASE_URL": f"sqlite:///{tmp_path / 'download.db'}",
        "STORAGE_DIR": str(tmp_path / "storage"),
        "DOWNLOAD_ALLOW_PRIVATE_NETWORKS": "true",  # the origin is on loopback
        "DOWNLOAD_SEGMENT_CONCURRENCY": "1",  # segments one after another: a crash point the test can name
        "DOWNLOAD_MAX_ACTIVE_TASKS": "1",  # so a second task waits in the queue when the server dies
        "DOWNLOAD_SHUTDOWN_GRACE_SECONDS": "0",
    }
    token, _ = JwtIssuer(JwtSettings(secret_key=SECRET)).issue(sub=USER, type="access", ttl_seconds=600)
    md = (("authorization", f"Bearer {token}"),)

    async with Origin.serving(media_fixtures, tmp_path) as origin:
        origin.gate(seg(3))  # the first request for segment 3 is never answered: the server dies waiting
        for i in range(6):
            origin.slow(seg(i), delay=0.1)  # a slow-ish stream (after the gate, for segment 3)
        async with download_server(tmp_path, **env) as server:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = server.stub(channel)
                create = pb.CreateTaskRequest(
                    video_id=str(uuid.uuid4()),
                    liveroom_id="crash",
                    resource_url=origin.url("hls_ts/index.m3u8"),
                    resource_type=pb.RESOURCE_TYPE_HLS,
                )
                hls = (await stub.CreateTask(create, metadata=md)).task
                create.video_id, create.resource_url = str(uuid.uuid4()), origin.url("mp4/clip.mp4")
                create.resource_type = pb.RESOURCE_TYPE_MP4
                mp4 = (await stub.CreateTask(create, metadata=md)).task
                started = await first_event(stub.StartTask(pb.StartTaskRequest(task_id=hls.id), metadata=md))
                assert started.status == pb.TASK_STATUS_PROCESSING
                queued = await first_event(stub.StartTask(pb.StartTaskRequest(task_id=mp4.id), metadata=md))
                assert queued.status == pb.TASK_STATUS_PENDING
                # One segment at a time: segment 3 is asked for only once 0-2 are whole on disk.
                await asyncio.wait_for(origin.wait_requests(seg(3), 1), timeout=60)
            server.proc.send_signal(signal.SIGKILL)
            assert await server.proc.wait() == -signal.SIGKILL
        assert [origin.completed[seg(i)] for i in range(6)] == [1, 1, 1, 0, 0, 0]
        assert origin.requests["mp4/clip.mp4"] == 0

        async with download_server(tmp_path, **env) as again:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{again.port}") as channel:
                stub = again.stub(channel)
                for task in (hls, mp4):
                    watch = stub.WatchTask(pb.WatchTaskRequest(task_id=task.id), metadata=md, timeout=120)
                    assert (await last_event(watch)).status == pb.TASK_STATUS_COMPLETED
                done = (await stub.GetTask(pb.GetTaskRequest(task_id=hls.id), metadata=md)).task
            again.proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(again.proc.wait(), timeout=60) == 0
        log = "".join(again.log)
        assert "recovering 2 interrupted or queued download(s)" in log, log

        # Nothing complete was served twice: 0-2 once before the crash, 3-5 once after it.
        assert [origin.completed[seg(i)] for i in range(6)] == [1] * 6
        assert origin.completed["mp4/clip.mp4"] == 1
    assert (done.segments_done, done.segments_failed, done.retry_count) == (6, 0, 0)
    ts = sorted((tmp_path / "storage" / "hls" / hls.id / "ts").iterdir(), key=lambda p: int(p.stem))
    assert [sha256(p) for p in ts] == manifest["hls_ts"]["segment_sha256"]
    [mp4_file] = (tmp_path / "storage" / "mp4").iterdir()
    assert sha256(mp4_file) == manifest["mp4"]["sha256"]
    assert not list((tmp_path / "storage").rglob("*.part"))
