"""`python -m download_server` SIGKILLed again and again during one larger HLS download: each restart carries
on, and at the end every byte is identical and no complete segment was ever served twice."""

from __future__ import annotations

import asyncio
import random
import signal
import uuid
from pathlib import Path

import grpc
import pytest

from auth_server.adapters.tokens import JwtIssuer
from mediadl.download.v1 import download_pb2 as pb
from mediadl_common.config import JwtSettings
from tests.download.api import SECRET
from tests.e2e.test_crash_recovery import download_server, first_event, last_event
from tests.support.media import sha256
from tests.support.origin import Origin

pytestmark = pytest.mark.e2e
SEGMENTS = 30
PLAYLIST = "big/index.m3u8"


def seg(i: int) -> str:
    return f"big/seg{i:02d}.ts"


def write_stream(origin: Origin) -> list[str]:
    """A 30-segment stream cut from the hls_ts fixture (segments repeat; their paths do not). Returns hashes."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0"]
    hashes = []
    for i in range(SEGMENTS):
        source = origin.root / f"hls_ts/seg{i % 6:02d}.ts"
        origin.write(seg(i), source.read_bytes())
        hashes.append(sha256(source))
        lines += ["#EXTINF:1.0,", f"seg{i:02d}.ts"]
    origin.write(PLAYLIST, ("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n").encode())
    return hashes


async def test_repeated_sigkills_during_a_download_never_refetch_a_complete_segment(
    media_fixtures: Path, tmp_path: Path
) -> None:
    env = {
        "DOWNLOAD_DATABASE_URL": f"sqlite:///{tmp_path / 'download.db'}",
        "STORAGE_DIR": str(tmp_path / "storage"),
        "DOWNLOAD_ALLOW_PRIVATE_NETWORKS": "true",  # the origin is on loopback
        # One segment at a time: everything before the one in flight is whole on disk when the kill lands,
        # so "served twice" can only mean the engine fetched a complete segment again.
        "DOWNLOAD_SEGMENT_CONCURRENCY": "1",
        "DOWNLOAD_SHUTDOWN_GRACE_SECONDS": "0",
    }
    token, _ = JwtIssuer(JwtSettings(secret_key=SECRET)).issue(sub="crash-user", type="access", ttl_seconds=600)
    md = (("authorization", f"Bearer {token}"),)
    # Kill points drawn at random (seeded: a failure replays) among the segments, each either before the
    # origin answers (gate) or with half the body received (hold); once during re-planning after a restart.
    rng = random.Random(20261122)
    points = sorted(rng.sample(range(1, SEGMENTS - 1), 4))
    kinds = [rng.choice(["gate", "hold"]) for _ in points]

    async with Origin.serving(media_fixtures, tmp_path) as origin:
        expected = write_stream(origin)
        for point, kind in zip(points, kinds, strict=True):
            getattr(origin, kind)(seg(point))  # held forever: only the kill ends that request
        # One start per step: killed at each point in turn, once while re-planning, then left to finish.
        steps: list[int | str] = [*points[:2], "playlist", *points[2:], "finish"]
        task_id = ""
        for step in steps:
            if step == "playlist":
                origin.gate(PLAYLIST)  # the recovery's fresh look at the playlist is never answered
            async with download_server(tmp_path, **env) as server:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                    stub = server.stub(channel)
                    if not task_id:
                        create = pb.CreateTaskRequest(
                            video_id=str(uuid.uuid4()),
                            liveroom_id="crashes",
                            resource_url=origin.url(PLAYLIST),
                            resource_type=pb.RESOURCE_TYPE_HLS,
                        )
                        task_id = (await stub.CreateTask(create, metadata=md)).task.id
                        started = await first_event(stub.StartTask(pb.StartTaskRequest(task_id=task_id), metadata=md))
                        assert started.status == pb.TASK_STATUS_PROCESSING
                    if step != "finish":
                        path, count = (
                            (PLAYLIST, origin.requests[PLAYLIST] + 1) if step == "playlist" else (seg(int(step)), 1)
                        )
                        await asyncio.wait_for(origin.wait_requests(path, count), timeout=60)
                        server.proc.send_signal(signal.SIGKILL)
                        assert await server.proc.wait() == -signal.SIGKILL
                        if isinstance(step, int):
                            assert [origin.completed[seg(i)] for i in range(step)] == [1] * step
                        continue
                    watch = stub.WatchTask(pb.WatchTaskRequest(task_id=task_id), metadata=md, timeout=120)
                    assert (await last_event(watch)).status == pb.TASK_STATUS_COMPLETED
                    done = (await stub.GetTask(pb.GetTaskRequest(task_id=task_id), metadata=md)).task
                server.proc.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(server.proc.wait(), timeout=60) == 0

        assert [origin.completed[seg(i)] for i in range(SEGMENTS)] == [1] * SEGMENTS, (points, kinds)
        assert origin.requests[PLAYLIST] == len(steps)  # one plan per start, the killed re-plan included
    assert (done.segments_done, done.segments_failed, done.retry_count) == (SEGMENTS, 0, 0)
    folder = tmp_path / "storage" / "hls" / task_id
    files = sorted((folder / "ts").iterdir(), key=lambda p: int(p.stem))
    assert [sha256(p) for p in files] == expected
    assert not list((tmp_path / "storage").rglob("*.part"))
    assert sorted(p.name for p in folder.iterdir()) == ["index.m3u8", "ts"]
