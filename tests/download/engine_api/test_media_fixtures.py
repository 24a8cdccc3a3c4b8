"""Every media fixture, created with CreateTask and downloaded with StartTask over gRPC: the bytes on disk are
the manifest's, the local playlist plays in ffprobe, and GetVideo describes what was produced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mediadl.download.v1 import download_pb2 as pb
from tests.download.engine_api.flows import Downloads, is_monotonic, sha256
from tests.support.media import decoded_video_frames

HLS_CASES = {
    # fixture: (playlist path, segment hashes key, segment extension)
    "hls_ts": ("hls_ts/index.m3u8", "segment_sha256", "ts"),
    "hls_fmp4": ("hls_fmp4/index.m3u8", "segment_sha256", "m4s"),
    "hls_aes128": ("hls_aes128/index.m3u8", "plaintext_segment_sha256", "ts"),
    "hls_master": ("hls_master/master.m3u8", "segment_sha256_high", "ts"),
}


def playlist_seconds(origin_root: Path, playlist: str) -> float:
    text = (origin_root / playlist).read_text()
    return sum(float(line.split(":", 1)[1].rstrip(",")) for line in text.splitlines() if line.startswith("#EXTINF:"))


@pytest.mark.parametrize("fixture", sorted(HLS_CASES))
async def test_hls_fixture_downloads_to_the_manifest_bytes_and_plays(
    downloads: Downloads, manifest: dict[str, Any], fixture: str
) -> None:
    playlist, hashes_key, ext = HLS_CASES[fixture]
    expected = manifest[fixture]
    task = await downloads.create(playlist)
    events = await downloads.start(task.id)

    assert events[0].status in (pb.TASK_STATUS_PROCESSING, pb.TASK_STATUS_PENDING)
    assert events[-1].status == pb.TASK_STATUS_COMPLETED, events[-1].message
    assert is_monotonic(events)
    assert (events[-1].segments_done, events[-1].segments_total, events[-1].progress) == (6, 6, 1.0)
    files = downloads.segment_files(task.id)
    assert [p.name for p in files] == [f"{i}.{ext}" for i in range(6)]  # named by index, never from the URL
    assert [sha256(p) for p in files] == expected[hashes_key]
    hls_dir = downloads.storage.hls_dir(task.id)
    if fixture == "hls_fmp4":
        assert sha256(hls_dir / "init_0.mp4") == expected["init_sha256"]
    if fixture == "hls_master":
        # The highest-bandwidth variant, and nothing of the other one.
        assert not any(path.startswith("hls_master/low/") for path in downloads.origin.requests)
        playlist = "hls_master/" + expected["highest_bandwidth_variant"]
    local = downloads.storage.playlist_path(task.id)
    assert "#EXT-X-KEY" not in local.read_text() and "#EXT-X-ENDLIST" in local.read_text()

    stored = await downloads.get(task.id)
    assert (stored.status, stored.segments_done, stored.segments_failed) == (pb.TASK_STATUS_COMPLETED, 6, 0)
    assert stored.HasField("complete_time")
    video = await downloads.video(task)
    on_disk = sum(p.stat().st_size for p in files) + sum(p.stat().st_size for p in hls_dir.glob("init_*.mp4"))
    assert (video.task_id, video.format, video.segment_count, video.file_size) == (task.id, "hls", 6, on_disk)
    assert video.file_path == str(local.relative_to(downloads.storage.root))  # never an absolute path
    assert video.duration_seconds == pytest.approx(playlist_seconds(downloads.origin.root, playlist))
    frames = expected.get("video_frames") or expected["video_frames_high"]
    assert decoded_video_frames(local) == frames


async def test_mp4_fixture_downloads_whole_and_plays(downloads: Downloads, manifest: dict[str, Any]) -> None:
    expected = manifest["mp4"]
    task = await downloads.create(expected["file"], "MP4")
    events = await downloads.start(task.id)

    assert events[-1].status == pb.TASK_STATUS_COMPLETED, events[-1].message
    assert is_monotonic(events) and events[-1].bytes_downloaded == events[-1].bytes_total == expected["size"]
    stored = await downloads.api.store.get_task(task.id)
    path = downloads.storage.mp4_path(stored)
    assert path.parent.name == "mp4" and path.name.startswith(f"room-1_{task.video_id}_")
    assert sha256(path) == expected["sha256"]
    video = await downloads.video(task)
    assert (video.format, video.file_path, video.file_size, video.sha256, video.segment_count) == (
        "mp4",
        str(path.relative_to(downloads.storage.root)),
        expected["size"],
        expected["sha256"],
        0,
    )
    assert video.duration_seconds > 0
    assert decoded_video_frames(path) == expected["video_frames"]


@pytest.mark.parametrize("image", ["image/frame.png", "image/frame.jpg"])
async def test_image_fixture_downloads_with_its_type_checked(
    downloads: Downloads, manifest: dict[str, Any], image: str
) -> None:
    expected = manifest["image"][image]
    task = await downloads.create(image, "IMAGE")
    events = await downloads.start(task.id)

    assert events[-1].status == pb.TASK_STATUS_COMPLETED, events[-1].message
    stored = await downloads.api.store.get_task(task.id)
    path = downloads.storage.image_path(stored, "png" if image.endswith(".png") else "jpg")
    assert sha256(path) == expected["sha256"]
    video = await downloads.video(task)
    assert (video.format, video.file_path, video.file_size, video.sha256, video.segment_count) == (
        "image",
        str(path.relative_to(downloads.storage.root)),
        expected["size"],
        expected["sha256"],
        0,  # segments are an HLS notion: a whole file has none
    )


async def test_an_image_url_that_serves_something_else_fails_with_a_record(downloads: Downloads) -> None:
    task = await downloads.create("hls_ts/index.m3u8", "IMAGE")  # a playlist, not a picture
    events = await downloads.start(task.id)
    assert events[-1].status == pb.TASK_STATUS_FAILED
    [failure] = await downloads.failures(task.id)
    assert (failure.segment_index, failure.error_type) == (-1, "bad_content")
    assert not list((downloads.api.settings.storage_dir / "images").glob("*"))
