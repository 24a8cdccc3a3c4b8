"""Live recordings and reading recordings back through the gRPC API: the URL swap of UpdateTask on a running
live task (SQLite and PostgreSQL), output_format/max_duration_seconds rules, ReadVideo (sha256, resume, owner)."""

from __future__ import annotations

import hashlib

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from mediadl.download.v1 import download_pb2 as pb
from tests.download.engine.test_live import playlist
from tests.download.engine_api.flows import ALICE, BOB, TS, Downloads, events_of, sha256, until
from tests.support.s3 import StorageBackend

SIGNED = "live/signed.m3u8"


def swap(task_id: str, url: str) -> pb.UpdateTaskRequest:
    return pb.UpdateTaskRequest(task_id=task_id, resource_url=url, update_mask=FieldMask(paths=["resource_url"]))


async def test_update_task_swaps_the_url_of_a_running_live_recording(both_downloads: Downloads) -> None:
    downloads, origin = both_downloads, both_downloads.origin
    origin.sequence(SIGNED, [playlist(0, 1), playlist(0, 3)])
    task = await downloads.create(SIGNED)
    stream = downloads.start_stream(task.id)
    await until(stream, lambda e: e.segments_done == 4)
    origin.fail(SIGNED, status=403, times=None)  # the signature expired: an outage, not the end
    origin.sequence("live/renewed.m3u8", [playlist(2, 5, ended=True)])

    updated = (
        await downloads.api.stub.UpdateTask(swap(task.id, origin.url("live/renewed.m3u8")), metadata=downloads.md())
    ).task
    assert updated.status == pb.TASK_STATUS_PROCESSING  # the recording goes on: nothing is reset

    events = await events_of(stream)
    assert events[-1].status == pb.TASK_STATUS_COMPLETED
    done = await downloads.get(task.id)
    assert (done.segments_total, done.resource_url) == (6, origin.url("live/renewed.m3u8"))
    assert downloads.served("hls_ts/seg") == {f"hls_ts/seg0{i}.ts": 1 for i in range(6)}


async def test_a_running_task_that_is_not_live_keeps_its_url(downloads: Downloads) -> None:
    hold = downloads.origin.hold("mp4/clip.mp4")
    task = await downloads.create("mp4/clip.mp4", "MP4")
    stream = downloads.start_stream(task.id)
    await until(stream, lambda e: e.bytes_downloaded > 0)
    call = downloads.api.stub.UpdateTask(swap(task.id, downloads.origin.url("mp4/x.mp4")), metadata=downloads.md())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    hold.set()
    assert (await events_of(stream))[-1].status == pb.TASK_STATUS_COMPLETED


@pytest.mark.parametrize(
    ("kind", "fields", "field"),
    [
        (pb.RESOURCE_TYPE_MP4, {"output_format": pb.OUTPUT_FORMAT_MP4}, "output_format"),
        (pb.RESOURCE_TYPE_IMAGE, {"max_duration_seconds": 30}, "max_duration_seconds"),
        (pb.RESOURCE_TYPE_HLS, {"max_duration_seconds": -1}, "max_duration_seconds"),
        (pb.RESOURCE_TYPE_HLS, {"output_format": 9}, "output_format"),
    ],
)
async def test_output_choices_apply_to_streams_only(
    downloads: Downloads, kind: int, fields: dict[str, int], field: str
) -> None:
    request = pb.CreateTaskRequest(
        video_id="0b0e3c1e-3f5a-4d43-9a55-5a4b1f0e9d11",
        liveroom_id="room",
        resource_url=downloads.origin.url("x"),
        resource_type=kind,  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await downloads.api.stub.CreateTask(request, metadata=downloads.md())
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (refused.value.details() or "")


async def test_create_task_keeps_output_format_and_max_duration(downloads: Downloads) -> None:
    task = await downloads.api.create_task(
        ALICE,
        resource_url=downloads.origin.url(TS),
        resource_type=pb.RESOURCE_TYPE_HLS,
        output_format=pb.OUTPUT_FORMAT_MP4,
        max_duration_seconds=90,
    )
    got = await downloads.get(task.id)
    assert (got.output_format, got.max_duration_seconds) == (pb.OUTPUT_FORMAT_MP4, 90)
    plain = await downloads.create(TS)
    assert (plain.output_format, plain.max_duration_seconds) == (pb.OUTPUT_FORMAT_HLS, 0)


async def read(downloads: Downloads, user: str = ALICE, **fields: object) -> tuple[bytes, list[pb.ReadVideoResponse]]:
    request = pb.ReadVideoRequest(**fields)  # type: ignore[arg-type]
    messages = [m async for m in downloads.api.stub.ReadVideo(request, metadata=downloads.md(user))]
    return b"".join(m.data for m in messages), messages


async def read_code(downloads: Downloads, user: str = ALICE, **fields: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await read(downloads, user, **fields)
    return refused.value.code()


async def test_read_video_streams_a_file_from_an_offset_to_its_owner_only(
    backend_downloads: Downloads, storage_backend: StorageBackend
) -> None:
    downloads = backend_downloads
    task = await downloads.create("mp4/clip.mp4", "MP4")
    assert (await downloads.start(task.id))[-1].status == pb.TASK_STATUS_COMPLETED
    source = downloads.origin.root / "mp4/clip.mp4"
    whole, messages = await read(downloads, video_id=task.video_id)
    assert hashlib.sha256(whole).hexdigest() == sha256(source)
    assert all(len(m.data) <= 1024 * 1024 for m in messages)
    assert messages[0].total_size == len(whole) and messages[0].content_type == "video/mp4"

    cut = len(whole) // 3
    rest, resumed = await read(downloads, video_id=task.video_id, offset=cut)
    assert resumed[0].offset == cut and whole[:cut] + rest == whole

    assert await read_code(downloads, BOB, video_id=task.video_id) == grpc.StatusCode.NOT_FOUND
    assert await read_code(downloads, video_id=task.video_id, offset=len(whole) + 1) == grpc.StatusCode.INVALID_ARGUMENT
    picture, shown = await read(downloads, video_id=task.video_id, kind=pb.VIDEO_FILE_KIND_THUMBNAIL)
    assert picture[:2] == b"\xff\xd8" and shown[0].content_type == "image/jpeg"
    if storage_backend.remote:  # served from the bucket: the work area holds nothing of the finished task
        assert not list(downloads.storage.root.glob("mp4/*")) and not list(downloads.storage.root.glob("thumbnails/*"))
        assert set(storage_backend.keys()) == {(await downloads.video(task)).file_path, f"thumbnails/{task.id}.jpg"}


async def test_read_video_serves_an_hls_recording_by_path_and_nothing_outside(
    backend_downloads: Downloads, storage_backend: StorageBackend
) -> None:
    downloads = backend_downloads
    task = await downloads.create(TS)
    assert (await downloads.start(task.id))[-1].status == pb.TASK_STATUS_COMPLETED
    assert await read_code(downloads, video_id=task.video_id) == grpc.StatusCode.FAILED_PRECONDITION
    text, messages = await read(downloads, video_id=task.video_id, path="index.m3u8")
    assert b"ts/0.ts" in text and messages[0].content_type == "application/vnd.apple.mpegurl"
    segment, _ = await read(downloads, video_id=task.video_id, path="ts/0.ts")
    assert hashlib.sha256(segment).hexdigest() == sha256(downloads.origin.root / "hls_ts/seg00.ts")

    if not storage_backend.remote:  # a symlink planted in the storage directory leads nowhere
        outside = downloads.storage.root / "secret.txt"
        outside.write_text("not yours")
        (downloads.storage.hls_dir(task.id) / "link").symlink_to(outside)
        assert await read_code(downloads, video_id=task.video_id, path="link") == grpc.StatusCode.NOT_FOUND
    assert await read_code(downloads, video_id=task.video_id, path="../x") == grpc.StatusCode.INVALID_ARGUMENT
    assert await read_code(downloads, video_id=task.video_id, path="/etc/passwd") == grpc.StatusCode.INVALID_ARGUMENT
    assert await read_code(downloads, video_id=task.video_id, path="nope.ts") == grpc.StatusCode.NOT_FOUND
    assert await read_code(downloads, BOB, video_id=task.video_id, path="index.m3u8") == grpc.StatusCode.NOT_FOUND


async def test_delete_with_files_removes_the_recording_from_the_store(
    backend_downloads: Downloads, storage_backend: StorageBackend
) -> None:
    downloads = backend_downloads
    keep, task = await downloads.create(TS), await downloads.create(TS)
    for one in (keep, task):
        assert (await downloads.start(one.id))[-1].status == pb.TASK_STATUS_COMPLETED
    await downloads.api.stub.DeleteTask(
        pb.DeleteTaskRequest(task_id=task.id, delete_files=True), metadata=downloads.md()
    )
    assert await read_code(downloads, video_id=task.video_id, path="index.m3u8") == grpc.StatusCode.NOT_FOUND
    assert (await read(downloads, video_id=keep.video_id, path="ts/5.ts"))[0]
    assert not downloads.storage.hls_dir(task.id).exists()
    if storage_backend.remote:
        keys = storage_backend.keys()
        assert keys and not [key for key in keys if task.id in key]
        assert {key.split("/")[1].removesuffix(".jpg") for key in keys} == {keep.id}
