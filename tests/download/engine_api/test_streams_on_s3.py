"""DASH and HTTP-FLV recordings on both media stores (the storage directory, then S3 in moto) through the gRPC
API: the files are published (on S3 the work area lets go of them), ReadVideo serves the manifest, a segment,
the MP4 and the .flv from where they are kept, and DeleteTask with delete_files removes every one of them."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mediadl.download.v1 import download_pb2 as pb
from tests.download.engine.dash.conftest import dash_media  # noqa: F401 - the session's DASH media fixture
from tests.download.engine.flv_origin import Connection, FlvOrigin
from tests.download.engine_api.conftest import ServerFactory
from tests.download.engine_api.flows import ALICE, Downloads
from tests.download.engine_api.test_live_api import read
from tests.support.s3 import StorageBackend


def kept(downloads: Downloads, backend: StorageBackend) -> set[str]:
    """The finished files where the backend keeps them (keys relative to the storage root)."""
    if backend.remote:
        return set(backend.keys())
    root = downloads.storage.root
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


async def delete_with_files(downloads: Downloads, task_id: str) -> None:
    request = pb.DeleteTaskRequest(task_id=task_id, delete_files=True)
    await downloads.api.stub.DeleteTask(request, metadata=downloads.md())


async def test_a_dash_recording_reads_back_by_path_and_as_its_mp4_then_is_deleted(
    backend_downloads: Downloads,
    storage_backend: StorageBackend,
    dash_media: Path,  # noqa: F811
) -> None:
    downloads, backend = backend_downloads, storage_backend
    shutil.copytree(dash_media / "timeline", downloads.origin.root / "dash")
    task = await downloads.api.create_task(
        ALICE,
        resource_url=downloads.origin.url("dash/manifest.mpd"),
        resource_type=pb.RESOURCE_TYPE_DASH,
        output_format=pb.OUTPUT_FORMAT_MP4,
    )
    assert (await downloads.start(task.id))[-1].status == pb.TASK_STATUS_COMPLETED
    video = await downloads.video(task)
    folder = f"dash/{task.id}/"
    files = kept(downloads, backend)
    names = {key.removeprefix(folder) for key in files if key.startswith(folder)}
    assert {"manifest.mpd", "video_init_0.mp4", "audio_init_0.mp4", "video_0.m4s", "audio_3.m4s"} <= names
    assert video.file_path in files and video.thumbnail_path in files
    if backend.remote:  # the work area let go of the recording: what follows is read from the bucket
        assert not (downloads.storage.root / folder).exists()

    whole, _ = await read(downloads, video_id=task.video_id)
    assert whole[4:8] == b"ftyp" and len(whole) == video.file_size
    text, messages = await read(downloads, video_id=task.video_id, path="manifest.mpd")
    assert b"video_0.m4s" in text and messages[0].content_type == "application/dash+xml"
    segment, _ = await read(downloads, video_id=task.video_id, path="video_0.m4s")
    assert segment == (downloads.origin.root / "dash" / "chunk-stream0-00001.m4s").read_bytes()
    tail, _ = await read(downloads, video_id=task.video_id, path="video_0.m4s", offset=100)
    assert tail == segment[100:]

    await delete_with_files(downloads, task.id)
    assert not {key for key in kept(downloads, backend) if task.id in key or key.startswith("dash/")}


@pytest.mark.parametrize("mp4", [False, True], ids=["flv", "mp4"])
async def test_a_live_flv_with_a_drop_reads_back_whole_then_is_deleted(
    serve: ServerFactory,
    make_database_url: Callable[[str], str],
    storage_backend: StorageBackend,
    flv: FlvOrigin,
    mp4: bool,
) -> None:
    backend = storage_backend
    cut = flv.keyframes()[1]
    flv.scripts["live.flv"] = [Connection(0, cut, end="drop"), Connection(cut, len(flv.tags))]
    # A short outage grace: the room has ended a moment after the script runs out.
    async with serve(make_database_url("sqlite"), DOWNLOAD_LIVE_OUTAGE_SECONDS="0.5", **backend.env()) as downloads:
        await _record_read_delete(downloads, backend, flv, mp4)


async def _record_read_delete(downloads: Downloads, backend: StorageBackend, flv: FlvOrigin, mp4: bool) -> None:
    task = await downloads.api.create_task(
        ALICE,
        resource_url=flv.url("live.flv"),
        resource_type=pb.RESOURCE_TYPE_FLV,
        output_format=pb.OUTPUT_FORMAT_MP4 if mp4 else pb.OUTPUT_FORMAT_HLS,
    )
    assert (await downloads.start(task.id))[-1].status == pb.TASK_STATUS_PARTIAL_COMPLETED
    [gap] = await downloads.failures(task.id)
    assert gap.error_type == "live_gap"
    video = await downloads.video(task)
    stem = video.file_path.removeprefix("flv/").rpartition(".")[0]
    files = kept(downloads, backend)
    # The .flv is kept beside its MP4 (the standard file name, not a task folder), with the thumbnail.
    assert {f"flv/{stem}.flv", video.file_path, video.thumbnail_path} <= files
    assert (f"flv/{stem}.mp4" in files) is mp4
    assert backend.open_uploads() == []

    whole, messages = await read(downloads, video_id=task.video_id)
    assert messages[0].content_type == ("video/mp4" if mp4 else "video/x-flv")
    assert whole[:3] == b"FLV" or whole[4:8] == b"ftyp"
    assert hashlib.sha256(whole).hexdigest() == video.sha256
    picture, _ = await read(downloads, video_id=task.video_id, kind=pb.VIDEO_FILE_KIND_THUMBNAIL)
    assert picture[:2] == b"\xff\xd8"

    await delete_with_files(downloads, task.id)
    assert not {key for key in kept(downloads, backend) if key.startswith("flv/") or task.id in key}
