"""DASH through the gRPC API: CreateTask takes RESOURCE_TYPE_DASH with the stream output choices, the
download leaves a video record (format mp4 with OUTPUT_FORMAT_MP4, else dash), and ReadVideo serves the
local manifest.mpd and its segments by `path`."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import grpc
import pytest

from mediadl.download.v1 import download_pb2 as pb
from tests.download.engine.dash.conftest import dash_media  # noqa: F401 - the session's DASH media fixture
from tests.download.engine_api.flows import ALICE, Downloads
from tests.download.engine_api.test_live_api import read, read_code


@pytest.fixture
def dash_origin(downloads: Downloads, dash_media: Path) -> Downloads:  # noqa: F811
    shutil.copytree(dash_media / "timeline", downloads.origin.root / "dash")
    return downloads


@pytest.fixture
def both_dash(both_downloads: Downloads, dash_media: Path) -> Downloads:  # noqa: F811
    """On SQLite and on PostgreSQL: the segment rows, failures and video record of a DASH task."""
    shutil.copytree(dash_media / "timeline", both_downloads.origin.root / "dash")
    return both_downloads


async def test_dash_task_with_mp4_output_reads_back_by_path_and_whole(dash_origin: Downloads) -> None:
    downloads = dash_origin
    task = await downloads.api.create_task(
        ALICE,
        resource_url=downloads.origin.url("dash/manifest.mpd"),
        resource_type=pb.RESOURCE_TYPE_DASH,
        output_format=pb.OUTPUT_FORMAT_MP4,
        max_duration_seconds=60,
    )
    assert (task.resource_type, task.output_format, task.max_duration_seconds) == (
        pb.RESOURCE_TYPE_DASH,
        pb.OUTPUT_FORMAT_MP4,
        60,
    )
    assert (await downloads.start(task.id))[-1].status == pb.TASK_STATUS_COMPLETED
    video = await downloads.video(task)
    assert video.format == "mp4" and video.file_path.startswith(f"dash/{task.id}/")

    whole, _ = await read(downloads, video_id=task.video_id)
    assert (
        whole[4:8] == b"ftyp"
        and hashlib.sha256(whole).hexdigest()
        == hashlib.sha256((downloads.storage.root / video.file_path).read_bytes()).hexdigest()
    )
    text, messages = await read(downloads, video_id=task.video_id, path="manifest.mpd")
    assert b"video_0.m4s" in text and messages[0].content_type == "application/dash+xml"
    segment, _ = await read(downloads, video_id=task.video_id, path="video_0.m4s")
    assert segment == (downloads.origin.root / "dash" / "chunk-stream0-00001.m4s").read_bytes()
    assert await read_code(downloads, video_id=task.video_id, path="../x") == grpc.StatusCode.INVALID_ARGUMENT


async def test_dash_output_without_mp4_is_read_by_path_only(both_dash: Downloads) -> None:
    downloads = both_dash
    downloads.origin.fail("dash/chunk-stream0-00002.m4s", status=404, times=1)
    url = downloads.origin.url("dash/manifest.mpd")
    task = await downloads.api.create_task(ALICE, resource_url=url, resource_type=pb.RESOURCE_TYPE_DASH)
    assert (await downloads.start(task.id))[-1].status == pb.TASK_STATUS_PARTIAL_COMPLETED
    [failure] = await downloads.failures(task.id)
    assert (failure.segment_index, failure.http_status) == (2, 404)  # row 2: the video's second segment
    assert (await downloads.retry(task.id))[-1].status == pb.TASK_STATUS_COMPLETED
    # The retry fetched only what failed: every segment body was served whole exactly once.
    assert set(downloads.served("dash/chunk").values()) == {1} and len(downloads.served("dash/chunk")) == 8
    video = await downloads.video(task)
    assert (video.format, video.file_path, video.segment_count) == ("dash", f"dash/{task.id}/manifest.mpd", 8)
    assert await read_code(downloads, video_id=task.video_id) == grpc.StatusCode.FAILED_PRECONDITION
    init, _ = await read(downloads, video_id=task.video_id, path="audio_init_0.mp4")
    assert init == (downloads.origin.root / "dash" / "init-stream1.m4s").read_bytes()
