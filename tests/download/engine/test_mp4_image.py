"""MP4 and image downloads: bytes as manifest.json says, Range resume and its fallback, type and size checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from download_server.domain.models import ResourceType, Segment, TaskStatus, VideoFormat
from download_server.engine.files.layout import Storage, standard_file_name, temp_path
from tests.download.engine.conftest import ENGINE, Harness
from tests.support.media import decoded_video_frames, sha256
from tests.support.origin import Origin
from tests.support.s3 import StorageBackend

MP4 = "mp4/clip.mp4"


async def test_mp4_is_streamed_to_its_standard_name(backend_harness: Harness, manifest: dict[str, Any]) -> None:
    harness = backend_harness
    task = await harness.create(MP4, ResourceType.MP4)
    done = await harness.run(task)

    expected = manifest["mp4"]
    stored = harness.view()
    path = stored.mp4_path(task)
    assert done.status is TaskStatus.COMPLETED and done.progress == 1.0
    assert path.name == standard_file_name(task.liveroom_id, task.video_id, task.create_time.date(), task.id) + ".mp4"
    assert (sha256(path), path.stat().st_size) == (expected["sha256"], expected["size"])
    assert (done.bytes_downloaded, done.bytes_total) == (expected["size"], expected["size"])
    video = harness.store.videos[task.id]
    assert (video.format, video.file_path, video.file_size, video.sha256) == (
        VideoFormat.MP4, str(path.relative_to(stored.root)), expected["size"], expected["sha256"])  # fmt: skip
    assert video.duration_seconds == pytest.approx(6.0, abs=0.1)
    assert decoded_video_frames(path) == expected["video_frames"]
    assert not temp_path(path).exists() and not temp_path(harness.storage.mp4_path(task)).exists()
    assert harness.backend.open_uploads() == []


@pytest.mark.parametrize("origin_honours_range", [True, False])
async def test_mp4_paused_midway_resumes_with_range(
    backend_harness: Harness, manifest: dict[str, Any], origin_honours_range: bool
) -> None:
    harness = backend_harness
    size = manifest["mp4"]["size"]
    release = harness.origin.hold(MP4)  # half the file, then the origin waits
    task = await harness.create(MP4, ResourceType.MP4)
    await harness.start_until(task, lambda e: e.bytes_downloaded >= size // 2)
    await harness.scheduler.pause(task.id)
    release.set()

    part = temp_path(harness.storage.mp4_path(task))
    assert part.stat().st_size == size // 2  # what arrived before the pause is kept
    paused = await harness.store.get_task(task.id)
    assert paused.status is TaskStatus.PAUSED
    if not origin_honours_range:
        harness.origin.ignore_range(MP4)
    done = await harness.run(task, action="resume")

    assert done.status is TaskStatus.COMPLETED
    assert sha256(harness.view().mp4_path(task)) == manifest["mp4"]["sha256"]
    assert harness.origin.range_headers[MP4] == [None, f"bytes={size // 2}-"]
    assert harness.backend.open_uploads() == []
    assert harness.last_events[-1].bytes_downloaded == size


async def test_mp4_recovered_after_a_crash_continues_its_part_file(
    origin: Origin, storage: Storage, manifest: dict[str, Any], storage_backend: StorageBackend
) -> None:
    # The state a killed process leaves: task PROCESSING, segment PENDING, a .part with the first bytes.
    harness = Harness(origin, storage, ENGINE, backend=storage_backend)
    try:
        task = await harness.create(MP4, ResourceType.MP4)
        task.status = TaskStatus.PROCESSING
        await harness.store.save_task(task)
        await harness.store.add_segments(task.id, [Segment(task.id, 0, task.resource_url)])
        part = temp_path(storage.mp4_path(task))
        part.parent.mkdir(parents=True)
        part.write_bytes((origin.root / MP4).read_bytes()[:50_000])
        with harness.broker.subscribe(task_id=task.id) as sub:
            assert await harness.scheduler.recover() == [task.id]
            async for event in sub:
                if event.status.is_terminal:
                    break
        done = await harness.store.get_task(task.id)
        assert done.status is TaskStatus.COMPLETED
        assert origin.range_headers[MP4] == ["bytes=50000-"]
        assert sha256(harness.view().mp4_path(task)) == manifest["mp4"]["sha256"]
    finally:
        await harness.scheduler.close()


async def test_mp4_that_never_arrives_whole_fails_with_one_record(harness: Harness) -> None:
    harness.origin.truncate(MP4, times=None)
    task = await harness.create(MP4, ResourceType.MP4)
    done = await harness.run(task)

    assert done.status is TaskStatus.FAILED
    [failure] = await harness.store.task_failures(task.id)
    assert (failure.segment_index, failure.error_type) == (-1, "truncated")
    assert failure.attempts > ENGINE.fetch.max_attempts  # the final sweep tried again before giving up
    assert not harness.storage.mp4_path(task).exists()
    assert task.id not in harness.store.videos


async def test_mp4_answered_with_an_html_page_is_refused(harness: Harness) -> None:
    harness.origin.content_types[MP4] = "text/html; charset=utf-8"
    task = await harness.create(MP4, ResourceType.MP4)
    done = await harness.run(task)
    [failure] = await harness.store.task_failures(task.id)
    assert (done.status, failure.error_type, failure.attempts) == (TaskStatus.FAILED, "bad_content", 1)


@pytest.mark.parametrize(("path", "extension"), [("image/frame.png", "png"), ("image/frame.jpg", "jpg")])
async def test_images_are_saved_with_their_type(
    backend_harness: Harness, manifest: dict[str, Any], path: str, extension: str
) -> None:
    harness = backend_harness
    task = await harness.create(path, ResourceType.IMAGE)
    done = await harness.run(task)

    expected = manifest["image"][path]
    stored = harness.view()
    saved = stored.image_path(task, extension)
    assert done.status is TaskStatus.COMPLETED
    assert (sha256(saved), saved.stat().st_size) == (expected["sha256"], expected["size"])
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]
    video = harness.store.videos[task.id]
    assert (video.format, video.file_path, video.sha256) == (
        VideoFormat.IMAGE,
        str(saved.relative_to(stored.root)),
        expected["sha256"],
    )
    assert video.thumbnail_path == f"thumbnails/{task.id}.jpg"
    assert (stored.root / video.thumbnail_path).read_bytes()[:2] == b"\xff\xd8"


async def test_an_image_url_serving_something_else_fails(harness: Harness) -> None:
    harness.origin.content_types["image/frame.png"] = "image/svg+xml"
    task = await harness.create("image/frame.png", ResourceType.IMAGE)
    done = await harness.run(task)
    [failure] = await harness.store.task_failures(task.id)
    assert (done.status, failure.error_type) == (TaskStatus.FAILED, "bad_content")
    assert "image/svg+xml" in failure.error_message
    assert not (harness.storage.root / "images").exists() or not any((harness.storage.root / "images").iterdir())


async def test_an_image_over_the_size_bound_fails(origin: Origin, storage: Storage) -> None:
    small = replace(ENGINE, fetch=replace(ENGINE.fetch, image_max_bytes=4096))
    harness = Harness(origin, storage, small)
    try:
        task = await harness.create("image/frame.png", ResourceType.IMAGE)
        done = await harness.run(task)
    finally:
        await harness.scheduler.close()
    [failure] = await harness.store.task_failures(task.id)
    assert (done.status, failure.error_type, failure.attempts) == (TaskStatus.FAILED, "too_large", 1)


def test_standard_file_name_is_safe_and_stable() -> None:
    name = standard_file_name("../room 7/", "8c1d-UUID", date(2026, 5, 17), "0f9e8d7c-aaaa")
    assert name == "___room_7__8c1d-UUID_20260517_0f9e8d7c"
    assert "/" not in name and ".." not in name


def test_storage_refuses_a_task_id_that_is_not_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Storage(tmp_path).hls_dir("../../etc")


async def test_an_mp4_over_the_file_limit_fails_at_once_with_one_record(
    origin: Origin, storage: Storage, tmp_path: Path
) -> None:
    """Finding 3 of issue 15: MP4 size was unbounded. A declared size over DOWNLOAD_MAX_FILE_BYTES fails the
    task at the first response, with no retry and no file left."""
    settings = replace(ENGINE, fetch=ENGINE.fetch.bounded(10_000))
    harness = Harness(origin, storage, settings)
    try:
        task = await harness.create(MP4, ResourceType.MP4)
        done = await harness.run(task)
        assert done.status is TaskStatus.FAILED
        [failure] = await harness.store.task_failures(task.id)
        assert (failure.error_type, failure.attempts) == ("too_large", 1)
        assert "over the 10000 byte limit" in failure.error_message
        assert origin.requests[MP4] == 1
        assert not storage.mp4_path(task).exists()
    finally:
        await harness.scheduler.close()
