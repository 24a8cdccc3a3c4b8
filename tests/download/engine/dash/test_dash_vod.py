"""DASH VOD through the scheduler from a local origin: every addressing mode, two periods, the local MPD and
the MP4 played by ffprobe, cenc refused, and the bookkeeping (rows per segment, retry-only-what-failed)."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from pathlib import Path

import pytest

from download_server.domain.models import (
    FailureStatus,
    OutputFormat,
    ResourceType,
    SegmentStatus,
    Task,
    TaskStatus,
    VideoFormat,
)
from tests.download.engine.conftest import Harness
from tests.download.engine.dash.media import FPS, FRAMES, SECOND_CLIP_SECONDS, SECONDS
from tests.support.media import decoded_video_frames, ffprobe, sha256

# (fixture, video segments, audio segments): 1 s segments of the 4 s clip (ffmpeg writes a 5th, tiny audio file
# in $Number$ mode that the MPD does not list: the MPD is what counts)
MODES = [("number", 4, 4), ("timeline", 4, 4), ("time", 4, 4), ("list", 4, 4), ("base", 4, 4)]


async def _download(harness: Harness, folder: str, *, mp4: bool = False) -> tuple[Task, Task]:
    task = await harness.create(f"{folder}/manifest.mpd", ResourceType.DASH)
    if mp4:
        task.output_format = OutputFormat.MP4
        await harness.store.save_task(task)
    return task, await harness.run(task)


def _files(harness: Harness, task: Task, kind: str) -> list[Path]:
    folder = harness.storage.dash_dir(task.id)
    return sorted(folder.glob(f"{kind}_[0-9]*.m4s"), key=lambda p: int(p.stem.split("_")[1]))


@pytest.mark.parametrize(("folder", "videos", "audios"), MODES)
async def test_each_addressing_mode_downloads_and_plays_offline(
    harness: Harness, folder: str, videos: int, audios: int
) -> None:
    task, done = await _download(harness, folder)

    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert (done.segments_total, done.segments_done, done.segments_failed) == (videos + audios, videos + audios, 0)
    assert [p.name for p in _files(harness, task, "video")] == [f"video_{n}.m4s" for n in range(videos)]
    assert [p.name for p in _files(harness, task, "audio")] == [f"audio_{n}.m4s" for n in range(audios)]
    folder_path = harness.storage.dash_dir(task.id)
    assert (folder_path / "video_init_0.mp4").is_file() and (folder_path / "audio_init_0.mp4").is_file()
    local = harness.storage.dash_manifest_path(task.id)
    text = local.read_text()
    assert "http" not in text.replace("http://", "", 0).split("xmlns", 1)[0] and "127.0.0.1" not in text
    assert decoded_video_frames(local) == FRAMES

    video = harness.store.videos[task.id]
    assert video.format is VideoFormat.DASH
    assert video.file_path == f"dash/{task.id}/manifest.mpd"
    assert video.segment_count == videos + audios
    assert video.duration_seconds == pytest.approx(SECONDS, abs=0.05)
    assert video.thumbnail_path == f"thumbnails/{task.id}.jpg"
    assert (harness.storage.root / video.thumbnail_path).stat().st_size > 0


@pytest.mark.parametrize(("folder", "tracks"), [("timeline", 2), ("two", 4), ("list", 0)])
async def test_the_local_mpd_carries_the_source_codecs(
    harness: Harness, dash_media: Path, folder: str, tracks: int
) -> None:
    # ffmpeg writes @codecs on each Representation (avc1, mp4a; per period); a player checks them before
    # playing. The hand-written SegmentList MPD has none: the local MPD then names none either.
    source = (dash_media / folder / "manifest.mpd").read_text()
    wanted = sorted(re.findall(r'codecs="([^"]+)"', source))
    assert len(wanted) == tracks
    task, done = await _download(harness, folder)
    assert done.status is TaskStatus.COMPLETED, done.last_error
    local = harness.storage.dash_manifest_path(task.id).read_text()
    assert sorted(re.findall(r'codecs="([^"]+)"', local)) == wanted


async def test_segment_base_reads_the_sidx_with_one_range_request_per_track(harness: Harness) -> None:
    task, done = await _download(harness, "base")
    assert done.status is TaskStatus.COMPLETED, done.last_error
    segments = await harness.store.list_segments(task.id)
    video = [s for s in segments if s.index % 2 == 0]
    # Subsegments follow one another in the file: each starts where the previous ended.
    assert all(s.byterange_length for s in video)
    for earlier, later in itertools.pairwise(video):
        assert later.byterange_offset == (earlier.byterange_offset or 0) + (earlier.byterange_length or 0)
    ranges = harness.origin.range_headers["base/video.mp4"]
    assert all(r is not None and r.startswith("bytes=") for r in ranges)


@pytest.mark.parametrize("folder", ["timeline", "base"])
async def test_mp4_output_muxes_video_and_audio(harness: Harness, folder: str) -> None:
    task, done = await _download(harness, folder, mp4=True)

    assert done.status is TaskStatus.COMPLETED, done.last_error
    video = harness.store.videos[task.id]
    assert video.format is VideoFormat.MP4
    mp4 = harness.storage.root / video.file_path
    assert mp4.parent == harness.storage.dash_dir(task.id)
    data = mp4.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")
    assert decoded_video_frames(mp4) == FRAMES
    assert _streams(mp4) == ["video", "audio"]
    assert video.sha256 == sha256(mp4)  # the record's hash is the MP4's, the file it names


async def test_two_periods_become_one_recording(harness: Harness) -> None:
    task, done = await _download(harness, "two", mp4=True)

    assert done.status is TaskStatus.COMPLETED, done.last_error
    segments = await harness.store.list_segments(task.id)
    video = [s for s in segments if s.index % 2 == 0]
    assert len(video) == SECONDS + SECOND_CLIP_SECONDS
    assert [s.discontinuity for s in video] == [False] * SECONDS + [True] + [False] * (SECOND_CLIP_SECONDS - 1)
    assert len({s.init_uri for s in video}) == 2
    folder = harness.storage.dash_dir(task.id)
    assert (folder / "video_init_1.mp4").is_file()
    text = harness.storage.dash_manifest_path(task.id).read_text()
    assert text.count("<Period") == 2
    mp4 = harness.storage.root / harness.store.videos[task.id].file_path
    assert decoded_video_frames(mp4) == (SECONDS + SECOND_CLIP_SECONDS) * FPS


async def test_protected_content_is_refused_before_any_download(harness: Harness) -> None:
    task, done = await _download(harness, "cenc")

    assert done.status is TaskStatus.FAILED
    assert "encrypted (cenc) not supported" in done.last_error
    failures = await harness.store.task_failures(task.id)
    assert [(f.segment_index, f.error_type) for f in failures] == [(-1, "bad_content")]
    assert not any(path.endswith(".m4s") for path in harness.origin.requests)
    assert done.segments_total == 0


async def test_retry_fetches_only_the_failed_segments(harness: Harness) -> None:
    harness.origin.fail("timeline/chunk-stream0-00003.m4s", status=404)
    harness.origin.fail("timeline/chunk-stream1-00002.m4s", status=404)
    task, done = await _download(harness, "timeline")

    assert done.status is TaskStatus.PARTIAL_COMPLETED
    failures = await harness.store.task_failures(task.id)
    assert sorted(f.segment_index for f in failures) == [3, 4]  # video #2 (index 4) and audio #1 (index 3)
    text = harness.storage.dash_manifest_path(task.id).read_text()
    assert "video_2.m4s" not in text and "audio_1.m4s" not in text

    harness.origin.heal()
    before = dict(harness.origin.requests)
    retried = await harness.run(done, action="retry")

    assert retried.status is TaskStatus.COMPLETED, retried.last_error
    fetched = {p: n - before.get(p, 0) for p, n in harness.origin.requests.items() if n != before.get(p, 0)}
    assert sorted(p for p in fetched if p.endswith(".m4s")) == [
        "timeline/chunk-stream0-00003.m4s",
        "timeline/chunk-stream1-00002.m4s",
    ]
    assert all(f.status is FailureStatus.RESOLVED for f in await harness.store.task_failures(task.id))
    assert decoded_video_frames(harness.storage.dash_manifest_path(task.id)) == FRAMES


async def test_restart_resumes_from_the_stored_rows(harness: Harness) -> None:
    """A run that dies after some segments (the rows say DONE for those) fetches only the rest."""
    task, done = await _download(harness, "number")
    assert done.status is TaskStatus.COMPLETED
    # As after a crash: the task PROCESSING again, two files gone from disk, their rows still DONE.
    folder = harness.storage.dash_dir(task.id)
    (folder / "video_1.m4s").unlink()
    (folder / "audio_3.m4s").unlink()
    stored = replace(await harness.store.get_task(task.id), status=TaskStatus.PROCESSING)
    await harness.store.save_task(stored)
    before = dict(harness.origin.requests)
    await harness.scheduler.recover()
    again = await harness.store.get_task(task.id)
    async for _event in harness.events(task.id):
        pass
    again = await harness.store.get_task(task.id)

    assert again.status is TaskStatus.COMPLETED, again.last_error
    fetched = sorted(p for p, n in harness.origin.requests.items() if n != before.get(p, 0) and p.endswith(".m4s"))
    assert fetched == ["number/chunk-stream0-00002.m4s", "number/chunk-stream1-00004.m4s"]
    assert all(s.status is SegmentStatus.DONE for s in await harness.store.list_segments(task.id))


def _streams(media: Path) -> list[str]:
    return ffprobe(media, "-show_entries", "stream=codec_type", "-of", "csv=p=0").split()
