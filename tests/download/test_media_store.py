"""The MediaStore port on both adapters: the storage directory (WorkAreaMedia) and S3 in moto (S3Media)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from download_server.adapters.s3_media import SINGLE_PUT_BYTES, S3Location, S3Media
from download_server.domain.models import Video, VideoFileKind, VideoFormat
from download_server.domain.ports import MediaStore, MediaStoreError
from download_server.engine.files.layout import Storage
from download_server.engine.files.objects import PART_BYTES, WorkAreaMedia
from download_server.engine.files.reading import StorageRecordingFiles
from mediadl_common.errors import InvalidArgument, NotFound
from tests.support.s3 import S3Server, StorageBackend


@pytest.fixture
async def media(storage_backend: StorageBackend, tmp_path: Path) -> AsyncIterator[MediaStore]:
    store: MediaStore = storage_backend.media() or WorkAreaMedia(tmp_path / "storage")
    yield store
    await store.close()


def _work_file(tmp_path: Path, name: str, data: bytes) -> Path:
    # In the work area of the local store (where the engine writes), elsewhere for S3: both must publish.
    path = tmp_path / "storage" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


async def test_publish_list_stat_read_and_remove(media: MediaStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    await media.publish("hls/t1/ts/0.ts", _work_file(tmp_path, "hls/t1/ts/0.ts", data), "abc")
    await media.publish("hls/t1/index.m3u8", _work_file(tmp_path, "hls/t1/index.m3u8", b"#EXTM3U\n"))
    await media.publish("hls/t10/ts/0.ts", _work_file(tmp_path, "hls/t10/ts/0.ts", b"other task"))

    assert await media.listing("hls/t1/") == {"hls/t1/ts/0.ts": len(data), "hls/t1/index.m3u8": 8}
    found = await media.stat("hls/t1/ts/0.ts")
    assert found is not None and found.size == len(data)
    assert await media.stat("hls/t1/ts/9.ts") is None
    chunks = [chunk async for chunk in media.read("hls/t1/ts/0.ts", 1000, 1024 * 1024)]
    assert b"".join(chunks) == data[1000:] and max(len(c) for c in chunks) == 1024 * 1024

    copy = tmp_path / "elsewhere" / "0.ts"
    await media.fetch("hls/t1/ts/0.ts", copy)
    assert copy.read_bytes() == data

    await media.remove(["hls/t1/"])
    assert await media.listing("hls/") == {"hls/t10/ts/0.ts": 10}


async def test_a_part_upload_is_invisible_until_complete(
    media: MediaStore, tmp_path: Path, storage_backend: StorageBackend
) -> None:
    data = os.urandom(PART_BYTES + 100)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    upload = await media.start_upload("mp4/clip.mp4")
    await upload.send(source, 0, PART_BYTES)
    assert await media.stat("mp4/clip.mp4") is None
    if storage_backend.remote:
        (left,) = await media.open_uploads("mp4/clip.mp4")
        assert (left.upload_id, [p.size for p in left.parts]) == (upload.upload_id, [PART_BYTES])
    await upload.send(source, PART_BYTES, 100)
    await upload.complete()
    assert b"".join([c async for c in media.read("mp4/clip.mp4", 0, PART_BYTES)]) == data
    assert await media.open_uploads("mp4/clip.mp4") == []

    aborted = await media.start_upload("mp4/other.mp4")
    await aborted.send(source, 0, PART_BYTES)
    await aborted.abort()
    assert await media.stat("mp4/other.mp4") is None and await media.open_uploads("mp4/other.mp4") == []


async def test_large_files_go_up_in_parts(s3_server: S3Server, tmp_path: Path) -> None:
    location = s3_server.location()
    backend, media = StorageBackend("s3", s3_server, location), S3Media(location)
    try:
        data = os.urandom(SINGLE_PUT_BYTES + 1)  # over the single-PUT bound: a multipart upload
        await media.publish("mp4/big.mp4", _work_file(tmp_path, "big.mp4", data), "sha")
        found = await media.stat("mp4/big.mp4")
        assert found is not None and (found.size, found.sha256) == (len(data), "sha")
        assert b"".join([c async for c in media.read("mp4/big.mp4", len(data) - 5, 1024)]) == data[-5:]
        assert backend.open_uploads() == []
    finally:
        await media.close()


async def test_an_unreachable_store_is_a_media_store_error(tmp_path: Path) -> None:
    closed = S3Media(
        S3Location(bucket="b", endpoint_url="http://127.0.0.1:9", access_key_id="a", secret_access_key="s"),
    )
    try:
        with pytest.raises(MediaStoreError) as caught:
            await closed.publish("hls/t/ts/0.ts", _work_file(tmp_path, "x.ts", b"x"))
        assert "hls/t/ts/0.ts" in str(caught.value)
        assert "secret_access_key" not in repr(closed.location)
    finally:
        await closed.close()


async def test_read_video_on_s3_refuses_what_is_outside_the_recording(s3_server: S3Server, tmp_path: Path) -> None:
    media = s3_server.media()
    task_id = "0b7c1f9e-0000-4000-8000-000000000001"
    try:
        await media.publish(f"hls/{task_id}/index.m3u8", _work_file(tmp_path, "i.m3u8", b"#EXTM3U\n"))
        reader = StorageRecordingFiles(Storage(tmp_path / "work"), media=media)
        video = Video(
            id="v",
            task_id=task_id,
            video_id="x",
            file_path="../secret",
            file_size=1,
            duration_seconds=0.0,
            format=VideoFormat.MP4,
        )
        chunks = [c async for c in reader.read(video, VideoFileKind.MEDIA, "index.m3u8", 3)]
        assert [(c.data, c.offset, c.total_size, c.content_type) for c in chunks] == [
            (b"TM3U\n", 3, 8, "application/vnd.apple.mpegurl")
        ]
        end = [c async for c in reader.read(video, VideoFileKind.MEDIA, "index.m3u8", 8)]
        assert [(c.data, c.offset) for c in end] == [(b"", 8)]
        for kind, path in ((VideoFileKind.MEDIA, ""), (VideoFileKind.MEDIA, "ts/0.ts")):
            with pytest.raises(NotFound):
                _ = [c async for c in reader.read(video, kind, path, 0)]
        with pytest.raises(InvalidArgument):
            _ = [c async for c in reader.read(video, VideoFileKind.MEDIA, "../x", 0)]
        with pytest.raises(InvalidArgument):
            _ = [c async for c in reader.read(video, VideoFileKind.MEDIA, "index.m3u8", 9)]
    finally:
        await media.close()
