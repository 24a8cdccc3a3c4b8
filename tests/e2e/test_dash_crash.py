"""A DASH download survives SIGKILL: `python -m download_server` dies mid-download, a new process resumes from
the stored rows, fetches no finished segment twice, and the MP4 it builds plays every frame."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import grpc
import pytest

from auth_server.adapters.tokens import JwtIssuer
from mediadl.download.v1 import download_pb2 as pb
from mediadl_common.config import JwtSettings
from tests.download.api import SECRET
from tests.download.engine.dash.conftest import dash_media  # noqa: F401 - the session's DASH media fixture
from tests.download.engine.dash.media import FRAMES
from tests.e2e.test_crash_recovery import download_server, first_event, last_event
from tests.support.media import decoded_video_frames
from tests.support.origin import Origin

pytestmark = pytest.mark.e2e
USER = "dash-crash-user"


def chunk(stream: int, number: int) -> str:
    return f"timeline/chunk-stream{stream}-{number:05d}.m4s"


async def test_sigkill_mid_dash_download_then_restart(dash_media: Path, tmp_path: Path) -> None:  # noqa: F811
    env = {
        "DOWNLOAD_DATABASE_URL": f"sqlite:///{tmp_path / 'download.db'}",
        "STORAGE_DIR": str(tmp_path / "storage"),
        "DOWNLOAD_ALLOW_PRIVATE_NETWORKS": "true",  # the origin is on loopback
        "DOWNLOAD_SEGMENT_CONCURRENCY": "1",  # rows in index order: a crash point the test can name
        "DOWNLOAD_SHUTDOWN_GRACE_SECONDS": "0",
    }
    token, _ = JwtIssuer(JwtSettings(secret_key=SECRET)).issue(sub=USER, type="access", ttl_seconds=600)
    md = (("authorization", f"Bearer {token}"),)
    async with Origin.serving(dash_media, tmp_path) as origin:
        origin.gate(chunk(0, 3))  # video segment 3 (row 4) is never answered: the server dies waiting for it
        async with download_server(tmp_path, **env) as server:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = server.stub(channel)
                create = pb.CreateTaskRequest(
                    video_id=str(uuid.uuid4()),
                    liveroom_id="crash",
                    resource_url=origin.url("timeline/manifest.mpd"),
                    resource_type=pb.RESOURCE_TYPE_DASH,
                    output_format=pb.OUTPUT_FORMAT_MP4,
                )
                task = (await stub.CreateTask(create, metadata=md)).task
                started = await first_event(stub.StartTask(pb.StartTaskRequest(task_id=task.id), metadata=md))
                assert started.status == pb.TASK_STATUS_PROCESSING
                await asyncio.wait_for(origin.wait_requests(chunk(0, 3), 1), timeout=60)
            server.proc.send_signal(signal.SIGKILL)
            assert await server.proc.wait() == -signal.SIGKILL
        before = {path: origin.completed[path] for path in (chunk(0, 1), chunk(0, 2), chunk(1, 1), chunk(1, 2))}
        assert before == dict.fromkeys(before, 1)

        async with download_server(tmp_path, **env) as again:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{again.port}") as channel:
                stub = again.stub(channel)
                watch = stub.WatchTask(pb.WatchTaskRequest(task_id=task.id), metadata=md, timeout=120)
                assert (await last_event(watch)).status == pb.TASK_STATUS_COMPLETED
                videos = await stub.ListTaskVideos(pb.ListTaskVideosRequest(task_id=task.id), metadata=md)
            again.proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(again.proc.wait(), timeout=60) == 0
        # Nothing complete was served twice.
        assert all(count == 1 for path, count in origin.completed.items() if path.endswith(".m4s"))
    [video] = videos.videos
    assert video.format == "mp4"
    assert decoded_video_frames(tmp_path / "storage" / video.file_path) == FRAMES
    assert decoded_video_frames(tmp_path / "storage" / "dash" / task.id / "manifest.mpd") == FRAMES
    assert not list((tmp_path / "storage").rglob("*.part"))
