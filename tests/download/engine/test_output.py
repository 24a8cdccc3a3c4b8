"""OUTPUT_FORMAT_MP4 and thumbnails: every HLS fixture, an ffmpeg-made byte-range stream and one with a
discontinuity become one MP4 that ffprobe plays with every frame, its duration within one frame of the
playlist's, moov ahead of mdat; every video record gets a JPEG thumbnail."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from download_server.domain.models import OutputFormat, ResourceType, Task, TaskStatus, Video, VideoFormat
from tests.download.engine.conftest import Harness
from tests.support.media import decoded_video_frames, ffprobe, sha256
from tests.support.origin import Origin

FPS = 10


def ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        pytest.skip("ffmpeg not installed: the test streams are made with it")
    return found


def probe(path: Path) -> dict[str, Any]:
    return dict(json.loads(ffprobe(path, "-show_streams", "-show_format", "-of", "json")))


def make_stream(folder: Path, seconds: int, *, byteranges: bool = False, offset: float = 0.0) -> Path:
    """An H.264 + AAC HLS stream of `seconds` at 10 fps, 1 s segments (one file with byte ranges if asked)."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size=160x90:rate={FPS}"]
    command += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", str(seconds)]
    command += [
        "-c:v",
        "libx264",
        "-g",
        str(FPS),
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-output_ts_offset",
        str(offset),
    ]
    command += ["-f", "hls", "-hls_time", "1", "-hls_list_size", "0", "-hls_playlist_type", "vod"]
    command += ["-hls_flags", "single_file"] if byteranges else []
    subprocess.run([*command, str(folder / "index.m3u8")], check=True, timeout=120)
    return folder / "index.m3u8"


async def mp4_of(harness: Harness, path: str) -> tuple[Task, Video, Path]:
    task = await harness.create(path)
    task.output_format = OutputFormat.MP4
    await harness.store.save_task(task)
    done = await harness.run(task)
    assert done.status is TaskStatus.COMPLETED, done.last_error
    (video,) = harness.store.videos.values()
    assert video.format is VideoFormat.MP4 and not Path(video.file_path).is_absolute()
    assert video.sha256 == sha256(harness.storage.root / video.file_path)  # the MP4's, as the record names it
    return done, video, harness.storage.root / video.file_path


def assert_hash_is_the_mp4s(harness: Harness, video: Video) -> None:
    """The record's sha256 is its MP4's, and on S3 the published object carries that hash."""
    assert video.format is VideoFormat.MP4
    assert video.sha256 == sha256(harness.view().root / video.file_path)
    if harness.backend.remote:
        assert harness.published_sha256(video.file_path) == video.sha256


def playable(mp4: Path, frames: int, duration: float, *, while_downloading: bool | None = None) -> None:
    """`while_downloading`: the MP4 was (True) or was not (False) built during the download (live_mux)."""
    assert decoded_video_frames(mp4) == frames
    data = mp4.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # the index first (faststart, or fragmented)
    if while_downloading is not None:
        assert (b"moof" in data) is while_downloading
    (video,) = [s for s in probe(mp4)["streams"] if s["codec_type"] == "video"]
    assert abs(float(video["duration"]) - duration) <= 1 / FPS + 1e-6


@pytest.mark.parametrize("fixture", ["hls_ts", "hls_fmp4", "hls_aes128", "hls_master"])
async def test_every_hls_fixture_becomes_one_playable_mp4(harness: Harness, fixture: str) -> None:
    name = "master.m3u8" if fixture == "hls_master" else "index.m3u8"
    task, video, mp4 = await mp4_of(harness, f"{fixture}/{name}")
    playable(mp4, 60, video.duration_seconds, while_downloading=True)
    assert mp4.parent == harness.storage.hls_dir(task.id)  # beside the playlist, in the task's folder
    assert video.thumbnail_path == f"thumbnails/{task.id}.jpg"
    assert probe(harness.storage.root / video.thumbnail_path)["streams"][0]["codec_name"] == "mjpeg"


async def test_a_byte_range_stream_becomes_one_mp4(harness: Harness, origin: Origin) -> None:
    make_stream(origin.root / "made_ranges", 4, byteranges=True)
    assert "#EXT-X-BYTERANGE" in (origin.root / "made_ranges/index.m3u8").read_text()
    _, video, mp4 = await mp4_of(harness, "made_ranges/index.m3u8")
    playable(mp4, 4 * FPS, video.duration_seconds, while_downloading=True)


async def test_a_discontinuity_plays_on_with_continuous_timestamps(harness: Harness, origin: Origin) -> None:
    first = make_stream(origin.root / "made_a", 3).read_text().split("#EXT-X-ENDLIST")[0]
    second = make_stream(origin.root / "made_b", 2, offset=500.0).read_text()
    body = second.split("#EXTINF", 1)[1].replace("index", "../made_b/index")
    joined = first + "#EXT-X-DISCONTINUITY\n#EXTINF" + body.replace("\nindex", "\n../made_b/index")
    origin.write("made_joined/index.m3u8", joined.replace("\nindex", "\n../made_a/index").encode())
    _, video, mp4 = await mp4_of(harness, "made_joined/index.m3u8")
    playable(mp4, 5 * FPS, video.duration_seconds, while_downloading=True)  # no 500 s jump, no stall


async def test_an_mp4_task_and_an_image_task_get_thumbnails(harness: Harness) -> None:
    for path, kind in (("mp4/clip.mp4", ResourceType.MP4), ("image/frame.png", ResourceType.IMAGE)):
        task = await harness.create(path, kind)
        assert (await harness.run(task)).status is TaskStatus.COMPLETED
        video = next(v for v in harness.store.videos.values() if v.task_id == task.id)
        thumb = probe(harness.storage.root / video.thumbnail_path)["streams"][0]
        assert thumb["codec_name"] == "mjpeg" and int(thumb["width"]) <= 640


async def test_a_retry_that_fills_a_gap_rebuilds_the_mp4(backend_harness: Harness, origin: Origin) -> None:
    harness = backend_harness  # on S3: the retry's run brings the stored segments back to remux them
    origin.fail("hls_ts/seg02.ts", status=404, times=None)
    task = await harness.create("hls_ts/index.m3u8")
    task.output_format = OutputFormat.MP4
    await harness.store.save_task(task)
    assert (await harness.run(task)).status is TaskStatus.PARTIAL_COMPLETED
    (video,) = harness.store.videos.values()
    playable(harness.view().root / video.file_path, 50, video.duration_seconds)
    assert_hash_is_the_mp4s(harness, video)

    origin.heal()
    assert (await harness.run(task, action="retry")).status is TaskStatus.COMPLETED
    video = next(v for v in harness.store.videos.values() if v.task_id == task.id)
    playable(harness.view().root / video.file_path, 60, video.duration_seconds)
    assert_hash_is_the_mp4s(harness, video)  # the whole remux's MP4 this time
    assert [harness.origin.requests[f"hls_ts/seg0{i}.ts"] for i in (0, 1, 3, 4, 5)] == [1] * 5
