"""HTTP-FLV recordings against origins the tests control: a VOD file (whole, resumed by Range), a live stream
with a dropped connection (timestamps continuing, or restarting with the header and codec setup resent), a
stream that ends, pause and resume, a killed process, max_duration_seconds, a swapped URL, the MP4 output,
and what is not FLV. Frames and timestamps by ffprobe."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from download_server.domain.models import (
    LIVE_GAP,
    FailureStatus,
    OutputFormat,
    ResourceType,
    Segment,
    Task,
    TaskStatus,
    Video,
    VideoFormat,
)
from download_server.engine.files.layout import Storage, temp_path
from tests.download.engine.conftest import ENGINE, Harness
from tests.download.engine.flv_origin import (
    Connection,
    FlvOrigin,
    RawTag,
    make_flv,
    packets,
    setup_tags,
    split,
)
from tests.support.media import decoded_video_frames, sha256
from tests.support.origin import Origin

FRAMES = 40  # make_flv(4 s) at 10 fps
SETUP = [18, 9, 8]  # onMetaData, the AVC and the AAC sequence headers: once each, however many reconnects


@pytest.fixture(scope="session")
def flv_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_flv(tmp_path_factory.mktemp("flv") / "clip.flv", 4)


@pytest.fixture
def flv_bytes(flv_media: Path) -> bytes:
    return flv_media.read_bytes()


@pytest.fixture
async def flv(flv_media: Path) -> AsyncIterator[FlvOrigin]:
    async with FlvOrigin(flv_media).serving() as served:
        yield served


@pytest.fixture
async def harness(origin: Origin, storage: Storage) -> AsyncIterator[Harness]:
    # A grace of a few reconnects at the tests' 20 ms interval, short enough to wait out at the end.
    engine = Harness(origin, storage, replace(ENGINE, live_outage_seconds=0.5))
    yield engine
    await engine.scheduler.close()


async def flv_task(harness: Harness, url: str, *, mp4: bool = False, limit: int = 0) -> Task:
    task = await harness.create("", ResourceType.FLV, url=url)
    task.output_format = OutputFormat.MP4 if mp4 else OutputFormat.HLS
    task.max_duration_seconds = limit
    await harness.store.save_task(task)
    return task


def video_of(harness: Harness, task: Task) -> Video:
    return next(v for v in harness.store.videos.values() if v.task_id == task.id)


def check_timeline(media: Path) -> None:
    """Decode times never go back (video strictly rising) and the whole plays in about the source's 4 s:
    no jump back to zero, no hole where a connection dropped."""
    video, audio = packets(media, "v"), packets(media, "a")
    assert video and audio
    assert all(b[0] > a[0] for a, b in itertools.pairwise(video))
    assert all(b[0] >= a[0] for a, b in itertools.pairwise(audio))
    assert video[-1][0] < 4.5 and audio[-1][0] < 4.5


async def live_gaps(harness: Harness, task: Task) -> list[str]:
    failures = await harness.store.task_failures(task.id)
    gaps = [f for f in failures if f.error_type == LIVE_GAP]
    assert all((f.segment_index, f.status) == (-1, FailureStatus.ABANDONED) for f in gaps)
    return [f.error_message for f in gaps]


async def test_a_vod_flv_downloads_whole_with_a_thumbnail(harness: Harness, flv: FlvOrigin) -> None:
    task = await flv_task(harness, flv.url("vod.flv"))
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED and not done.live
    path = harness.storage.flv_path(task)
    assert path.parent.name == "flv" and sha256(path) == sha256(flv.media)  # byte for byte
    video = video_of(harness, task)
    assert (video.format, video.file_path, video.sha256) == (VideoFormat.FLV, f"flv/{path.name}", sha256(path))
    assert 3.9 <= video.duration_seconds <= 4.2
    assert video.thumbnail_path and (harness.storage.root / video.thumbnail_path).is_file()
    assert decoded_video_frames(path) == FRAMES


@pytest.mark.parametrize("ranges", [True, False])
async def test_a_vod_flv_cut_off_resumes_by_range_or_starts_over(
    harness: Harness, flv_media: Path, flv_bytes: bytes, ranges: bool
) -> None:
    harness.origin.write("flv/vod.flv", flv_bytes)
    harness.origin.truncate("flv/vod.flv")
    if not ranges:
        harness.origin.ignore_range("flv/vod.flv")  # a 200 with the whole file: written again from zero
    task = await flv_task(harness, harness.origin.url("flv/vod.flv"))
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED
    assert sha256(harness.storage.flv_path(task)) == sha256(flv_media)
    first, resumed = harness.origin.range_headers["flv/vod.flv"]
    assert first is None and resumed is not None and resumed.startswith("bytes=")
    assert video_of(harness, task).sha256 == sha256(flv_media)


async def test_a_dropped_live_connection_is_a_gap_and_the_recording_goes_on(harness: Harness, flv: FlvOrigin) -> None:
    cut = flv.keyframes()[2]
    flv.scripts["live.flv"] = [Connection(0, cut, end="drop"), Connection(cut, len(flv.tags))]
    task = await flv_task(harness, flv.url("live.flv"))
    done = await harness.run(task)

    assert done.status is TaskStatus.PARTIAL_COMPLETED and done.live
    [gap] = await live_gaps(harness, task)
    assert "lost for about" in gap and " s " in gap
    path = harness.storage.flv_path(task)
    assert decoded_video_frames(path) == FRAMES
    assert setup_tags(path) == SETUP
    check_timeline(path)
    assert "recording ended" in harness.last_events[-1].message


async def test_a_reconnect_that_restarts_the_clock_and_resends_the_setup_plays_on_in_the_mp4(
    harness: Harness, flv: FlvOrigin
) -> None:
    cut = flv.keyframes()[2]
    restart = -flv.tags[cut].timestamp  # the origin's timestamps start at zero again
    flv.scripts["live.flv"] = [Connection(0, cut), Connection(cut, len(flv.tags), shift=restart)]
    task = await flv_task(harness, flv.url("live.flv"), mp4=True)
    done = await harness.run(task)

    assert done.status is TaskStatus.PARTIAL_COMPLETED
    assert len(await live_gaps(harness, task)) == 1
    flv_file = harness.storage.flv_path(task)
    assert setup_tags(flv_file) == SETUP
    check_timeline(flv_file)
    video = video_of(harness, task)
    mp4 = harness.storage.root / video.file_path
    assert (video.format, mp4) == (VideoFormat.MP4, harness.storage.flv_mp4_path(task))
    assert decoded_video_frames(mp4) == FRAMES
    check_timeline(mp4)
    data = mp4.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")


async def test_a_reconnect_that_replays_the_last_pictures_on_the_same_clock_loses_nothing(
    harness: Harness, flv: FlvOrigin
) -> None:
    # A CDN answers a new connection with the group of pictures it holds: media we have already.
    replay, cut = flv.keyframes()[1], flv.keyframes()[2]
    flv.scripts["live.flv"] = [Connection(0, cut, end="drop"), Connection(replay, len(flv.tags))]
    task = await flv_task(harness, flv.url("live.flv"))
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED  # the replay covered the drop: no gap
    assert await live_gaps(harness, task) == []
    path = harness.storage.flv_path(task)
    assert decoded_video_frames(path) == FRAMES  # each picture once

    def timing(tags: list[RawTag]) -> list[tuple[int, int]]:
        return [(t.kind, t.timestamp) for t in tags if not t.setup and t.data[:2] != b"\x17\x02"]  # no end marker

    assert timing(split(path.read_bytes())[1]) == timing(flv.tags)  # on the origin's own clock, nothing shifted


async def test_a_stream_that_ends_and_stays_away_has_ended(harness: Harness, flv: FlvOrigin) -> None:
    flv.scripts["live.flv"] = [Connection(0, len(flv.tags))]
    task = await flv_task(harness, flv.url("live.flv"))
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED
    assert await live_gaps(harness, task) == []
    assert "did not come back" in harness.last_events[-1].message
    assert any("live stream failed (HTTP 404): reconnecting (" in e.message for e in harness.last_events)
    assert flv.requests.count("live.flv") > 1  # reconnects were tried within the grace
    assert decoded_video_frames(harness.storage.flv_path(task)) == FRAMES


async def test_pause_stops_reading_and_resume_reconnects_with_a_gap(harness: Harness, flv: FlvOrigin) -> None:
    cut = flv.keyframes()[2]
    first = Connection(0, cut, hold=asyncio.Event())
    flv.scripts["live.flv"] = [first, Connection(cut, len(flv.tags))]
    task = await flv_task(harness, flv.url("live.flv"))
    held = len(flv.header) + sum(len(t.encode()) for t in [*flv.setup, *flv.tags[: cut // 2]])
    await harness.start_until(task, lambda e: e.bytes_downloaded == held)
    await harness.scheduler.pause(task.id)
    paused = await harness.store.get_task(task.id)
    assert paused.status is TaskStatus.PAUSED
    assert temp_path(harness.storage.flv_path(task)).stat().st_size == held  # every whole tag on disk
    assert first.hold is not None
    first.hold.set()

    done = await harness.run(task, action="resume")
    assert done.status is TaskStatus.PARTIAL_COMPLETED
    assert len(await live_gaps(harness, task)) == 1
    path = harness.storage.flv_path(task)
    expected = flv.video_between(0, cut // 2) + flv.video_between(cut, len(flv.tags))
    assert decoded_video_frames(path) == expected
    assert setup_tags(path) == SETUP
    check_timeline(path)


async def test_a_killed_recording_continues_after_its_last_whole_tag(
    origin: Origin, storage: Storage, flv: FlvOrigin
) -> None:
    # The state a killed process leaves: task PROCESSING and live, segment PENDING, a .part cut mid-tag.
    harness = Harness(origin, storage, replace(ENGINE, live_outage_seconds=0.5))
    try:
        cut = flv.keyframes()[2]
        task = await flv_task(harness, flv.url("live.flv"))
        task.status, task.live = TaskStatus.PROCESSING, True
        await harness.store.save_task(task)
        await harness.store.add_segments(task.id, [Segment(task.id, 0, task.resource_url)])
        part = temp_path(storage.flv_path(task))
        part.parent.mkdir(parents=True)
        whole = flv.header + b"".join(t.encode() for t in [*flv.setup, *flv.tags[:cut]])
        part.write_bytes(whole + flv.tags[cut].encode()[:50])
        flv.scripts["live.flv"] = [Connection(cut, len(flv.tags))]
        with harness.broker.subscribe(task_id=task.id) as sub:
            assert await harness.scheduler.recover() == [task.id]
            async for event in sub:
                if event.status.is_terminal:
                    break
        done = await harness.store.get_task(task.id)
        assert done.status is TaskStatus.PARTIAL_COMPLETED
        assert len(await live_gaps(harness, task)) == 1
        path = storage.flv_path(task)
        assert path.read_bytes()[: len(whole)] == whole  # appended after the last whole tag
        assert decoded_video_frames(path) == FRAMES
        assert setup_tags(path) == SETUP
        check_timeline(path)
    finally:
        await harness.scheduler.close()


async def test_max_duration_ends_a_live_recording_cleanly(harness: Harness, flv: FlvOrigin) -> None:
    flv.scripts["live.flv"] = [Connection(0, len(flv.tags))]
    task = await flv_task(harness, flv.url("live.flv"), limit=2)
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED
    assert "max_duration_seconds" in harness.last_events[-1].message
    path = harness.storage.flv_path(task)
    assert decoded_video_frames(path) == 2 * 10  # 2 s at 10 fps
    assert packets(path, "v")[-1][0] < 2.0


async def test_a_swapped_url_is_taken_at_the_next_connection(harness: Harness, flv: FlvOrigin) -> None:
    cut = flv.keyframes()[2]
    first = Connection(0, cut, hold=asyncio.Event())
    flv.scripts["live.flv"] = [first]
    task = await flv_task(harness, flv.url("live.flv"))
    held = len(flv.header) + sum(len(t.encode()) for t in [*flv.setup, *flv.tags[: cut // 2]])
    await harness.start_until(task, lambda e: e.bytes_downloaded == held)
    stored = await harness.store.get_task(task.id)
    stored.resource_url = flv.url("renewed.flv")  # what UpdateTask leaves in the row
    await harness.store.save_task(stored)
    flv.scripts["renewed.flv"] = [Connection(cut, len(flv.tags))]
    assert first.hold is not None
    first.hold.set()
    done = (await harness.until_stream_ends(task.id))[-1]

    assert done.status is TaskStatus.PARTIAL_COMPLETED
    assert flv.requests.count("renewed.flv") >= 1
    assert decoded_video_frames(harness.storage.flv_path(task)) == FRAMES


@pytest.mark.parametrize("path", ["page.flv", "fake.flv"])
async def test_what_is_not_flv_fails_fast_as_bad_content(harness: Harness, flv: FlvOrigin, path: str) -> None:
    task = await flv_task(harness, flv.url(path))
    done = await harness.run(task)

    assert done.status is TaskStatus.FAILED
    [failure] = await harness.store.task_failures(task.id)
    assert (failure.segment_index, failure.error_type, failure.attempts) == (-1, "bad_content", 1)
    assert flv.requests.count(path) == 1  # never retried


async def test_the_file_size_limit_ends_a_live_recording_cleanly(
    origin: Origin, storage: Storage, flv: FlvOrigin
) -> None:
    fetch = replace(ENGINE.fetch, max_file_bytes=20_000)
    harness = Harness(origin, storage, replace(ENGINE, live_outage_seconds=0.5, fetch=fetch))
    try:
        flv.scripts["live.flv"] = [Connection(0, len(flv.tags))]
        task = await flv_task(harness, flv.url("live.flv"))
        done = await harness.run(task)
        assert done.status is TaskStatus.COMPLETED
        assert "DOWNLOAD_MAX_FILE_BYTES" in harness.last_events[-1].message
        path = storage.flv_path(task)
        assert 15_000 < path.stat().st_size <= 20_000
        assert 0 < decoded_video_frames(path) < FRAMES
        vod = await flv_task(harness, flv.url("vod.flv"))  # a VOD file over the limit fails at once
        assert (await harness.run(vod)).status is TaskStatus.FAILED
        [failure] = await harness.store.task_failures(vod.id)
        assert failure.error_type == "too_large"
    finally:
        await harness.scheduler.close()


async def test_a_recording_past_the_users_quota_keeps_what_it_has_with_a_failure(
    origin: Origin, storage: Storage, flv: FlvOrigin
) -> None:
    harness = Harness(origin, storage, replace(ENGINE, live_outage_seconds=0.5, user_quota_bytes=10_000))
    try:
        cut = flv.keyframes()[2]
        flv.scripts["live.flv"] = [Connection(0, cut), Connection(cut, len(flv.tags))]
        task = await flv_task(harness, flv.url("live.flv"))
        done = await harness.run(task)
        assert done.status is TaskStatus.PARTIAL_COMPLETED
        [failure] = await harness.store.task_failures(task.id)  # no live gap: it never reconnected
        assert (failure.segment_index, failure.error_type) == (-1, "quota_exceeded")
        # Stopped within the first connection (how much of it arrived before the check depends on chunking).
        assert 0 < decoded_video_frames(storage.flv_path(task)) <= flv.video_between(0, cut)
    finally:
        await harness.scheduler.close()


async def test_a_crash_before_the_row_said_live_still_continues_the_file(
    origin: Origin, storage: Storage, flv: FlvOrigin
) -> None:
    # Killed before the first flush: the row does not say live yet, but the origin's answer does.
    harness = Harness(origin, storage, replace(ENGINE, live_outage_seconds=0.5))
    try:
        cut = flv.keyframes()[2]
        task = await flv_task(harness, flv.url("live.flv"))
        task.status = TaskStatus.PROCESSING
        await harness.store.save_task(task)
        await harness.store.add_segments(task.id, [Segment(task.id, 0, task.resource_url)])
        part = temp_path(storage.flv_path(task))
        part.parent.mkdir(parents=True)
        whole = flv.header + b"".join(t.encode() for t in [*flv.setup, *flv.tags[:cut]])
        part.write_bytes(whole)
        flv.scripts["live.flv"] = [Connection(cut, len(flv.tags))]
        with harness.broker.subscribe(task_id=task.id) as sub:
            assert await harness.scheduler.recover() == [task.id]
            async for event in sub:
                if event.status.is_terminal:
                    break
        done = await harness.store.get_task(task.id)
        assert done.status is TaskStatus.PARTIAL_COMPLETED and done.live
        assert len(await live_gaps(harness, task)) == 1
        path = storage.flv_path(task)
        assert path.read_bytes()[: len(whole)] == whole
        assert decoded_video_frames(path) == FRAMES
        check_timeline(path)
    finally:
        await harness.scheduler.close()
