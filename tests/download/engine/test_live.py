"""Live recordings against an origin the test controls: outages shorter and longer than the grace, media lost
meanwhile (live_gap), a 403 then a swapped URL, a media-sequence reset, max_duration_seconds,
the final sweep within the live window, an open circuit; frames by ffprobe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from download_server.domain.models import (
    LIVE_GAP,
    FailureStatus,
    OutputFormat,
    Segment,
    Task,
    TaskEvent,
    TaskStatus,
    VideoFormat,
)
from download_server.engine.files.layout import Storage
from download_server.engine.jobs import memory, work
from download_server.engine.jobs.ledger import RunLedger
from tests.download.engine.conftest import ENGINE, FAST, Harness
from tests.support.media import decoded_video_frames
from tests.support.origin import Origin

LIVE = "live/index.m3u8"
FRAMES_PER_SEGMENT = 10  # hls_ts: 6 segments, 60 frames


def playlist(first: int, last: int, *, ended: bool = False, files: list[int] | None = None) -> bytes:
    """Media sequences first..last; sequence n plays fixture segment n % 6 unless `files` says which."""
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:1", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    names = files or [n % 6 for n in range(first, last + 1)]
    for name in names:
        lines += ["#EXTINF:1.0,", f"../hls_ts/seg0{name}.ts"]
    return "\n".join([*lines, *(["#EXT-X-ENDLIST"] if ended else []), ""]).encode()


@pytest.fixture
async def live(origin: Origin, storage: Storage) -> AsyncIterator[Harness]:
    # A grace long enough for a few failed polls at the tests' 20 ms poll interval, short enough to wait out.
    engine = Harness(origin, storage, replace(ENGINE, live_outage_seconds=3.0))
    yield engine
    await engine.scheduler.close()


async def record_until_four(harness: Harness, path: str = LIVE) -> Task:
    harness.origin.sequence(path, [playlist(0, 1), playlist(0, 3)])
    task = await harness.create(path)
    task.output_format = OutputFormat.MP4  # every recording here is also checked as one MP4
    await harness.store.save_task(task)
    await harness.start_until(task, lambda e: e.segments_done == 4)
    return task


async def final(harness: Harness, task: Task) -> tuple[Task, list[TaskEvent]]:
    events = await harness.until_stream_ends(task.id)
    return await harness.store.get_task(task.id), events


def frames(harness: Harness, task: Task) -> int:
    """Frames of the local playlist; the MP4 (when the task asked for one) must play exactly as many."""
    played = decoded_video_frames(harness.storage.playlist_path(task.id))
    video = next(v for v in harness.store.videos.values() if v.task_id == task.id)
    if task.output_format is OutputFormat.MP4:
        assert video.format is VideoFormat.MP4
        assert decoded_video_frames(harness.storage.root / video.file_path) == played
    return played


async def test_an_outage_shorter_than_the_grace_is_waited_out(live: Harness) -> None:
    task = await record_until_four(live)
    live.origin.fail(LIVE, status=404, times=3)
    live.origin.sequence(LIVE, [playlist(2, 5, ended=True)])
    done, _ = await final(live, task)

    assert (done.status, done.segments_total, done.segments_done) == (TaskStatus.COMPLETED, 6, 6)
    assert frames(live, task) == 60
    assert not await live.store.task_failures(task.id)


async def test_an_outage_event_says_what_it_waits_for(origin: Origin, storage: Storage) -> None:
    harness = Harness(origin, storage, replace(ENGINE, live_outage_seconds=60.0))
    try:
        task = await record_until_four(harness)
        origin.fail(LIVE, status=404, times=None)
        event = await anext(e async for e in harness.events(task.id) if "live playlist 404 for" in e.message)
        assert event.status is TaskStatus.PROCESSING
        assert event.message.endswith(" of 60")
        await harness.scheduler.cancel(task.id)
    finally:
        await harness.scheduler.close()


async def test_an_outage_longer_than_the_grace_ends_the_room(origin: Origin, storage: Storage) -> None:
    harness = Harness(origin, storage, replace(ENGINE, live_outage_seconds=0.4))
    try:
        task = await record_until_four(harness)
        origin.fail(LIVE, status=404, times=None)
        done, events = await final(harness, task)
    finally:
        await harness.scheduler.close()

    assert (done.status, done.segments_done) == (TaskStatus.COMPLETED, 4)
    assert "the live playlist stopped answering" in events[-1].message
    assert "recording ended" in events[-1].message
    assert frames(harness, task) == 40
    assert "#EXT-X-ENDLIST" in harness.storage.playlist_path(task.id).read_text()


async def test_media_that_left_the_window_is_a_live_gap(live: Harness) -> None:
    task = await record_until_four(live)
    live.origin.fail(LIVE, status=503, times=3)
    live.origin.sequence(LIVE, [playlist(6, 7, ended=True)])  # sequences 4 and 5 went by meanwhile
    done, _ = await final(live, task)

    assert done.status is TaskStatus.PARTIAL_COMPLETED
    (gap,) = await live.store.task_failures(task.id)
    assert (gap.error_type, gap.status, gap.segment_index) == (LIVE_GAP, FailureStatus.ABANDONED, 4)
    assert "media sequences 4-5 (2 segment(s), about 2 s)" in gap.error_message
    text = live.storage.playlist_path(task.id).read_text()
    assert text.count("#EXT-X-DISCONTINUITY") == 1
    assert [line for line in text.splitlines() if line.startswith("ts/")][-2:] == ["ts/6.ts", "ts/7.ts"]
    assert frames(live, task) == 60  # 0-3, then 6 and 7 (fixture files 0 and 1)


async def test_a_403_then_a_swapped_url_goes_on(live: Harness) -> None:
    task = await record_until_four(live, "live/signed-a.m3u8")
    live.origin.fail("live/signed-a.m3u8", status=403, times=None)  # the signature expired
    live.origin.sequence("live/signed-b.m3u8", [playlist(2, 5, ended=True)])
    await live.origin.wait_requests("live/signed-a.m3u8", live.origin.requests["live/signed-a.m3u8"] + 2)
    stored = await live.store.get_task(task.id)
    stored.resource_url = live.origin.url("live/signed-b.m3u8")  # what UpdateTask leaves in the row
    await live.store.save_task(stored)
    done, _ = await final(live, task)

    assert (done.status, done.segments_total) == (TaskStatus.COMPLETED, 6)
    assert done.resource_url.endswith("signed-b.m3u8")
    assert all(live.origin.requests[f"hls_ts/seg0{i}.ts"] == 1 for i in range(6))
    assert frames(live, task) == 60


async def test_a_media_sequence_reset_is_a_discontinuity(live: Harness) -> None:
    task = await record_until_four(live)
    # The encoder restarted: numbering starts again at 0 (fixture files 4 and 5 play as its first media).
    live.origin.sequence(LIVE, [playlist(0, 1, ended=True, files=[4, 5])])
    done, _ = await final(live, task)

    assert (done.status, done.segments_total) == (TaskStatus.COMPLETED, 6)
    assert all(live.origin.requests[f"hls_ts/seg0{i}.ts"] == 1 for i in range(6))  # nothing fetched twice
    text = live.storage.playlist_path(task.id).read_text()
    assert text.count("#EXT-X-DISCONTINUITY") == 1
    assert text.index("#EXT-X-DISCONTINUITY") < text.index("ts/4.ts")
    assert frames(live, task) == 60


async def test_max_duration_ends_the_recording_cleanly(live: Harness) -> None:
    live.origin.sequence(LIVE, [playlist(0, 1), playlist(0, 3), playlist(0, 5)])
    task = await live.create(LIVE)
    task.max_duration_seconds = 3
    task.output_format = OutputFormat.MP4
    await live.store.save_task(task)
    done = await live.run(task)

    assert (done.status, done.segments_total) == (TaskStatus.COMPLETED, 3)
    assert "max_duration_seconds" in live.last_events[-1].message
    assert frames(live, task) == 30
    assert done.live


async def test_the_final_sweep_retries_only_what_the_window_still_lists(live: Harness) -> None:
    live.origin.fail("hls_ts/seg02.ts", status=503, times=None)  # sequence 2 fails every attempt
    live.origin.sequence(LIVE, [playlist(0, 3)])
    task = await live.create(LIVE)
    await live.start_until(task, lambda e: e.segments_done == 3 and e.segments_failed == 1)
    tried = live.origin.requests["hls_ts/seg02.ts"]
    live.origin.fail("hls_ts/seg05.ts", status=503, times=FAST.max_attempts)  # fails the run, not the sweep
    live.origin.sequence(LIVE, [playlist(3, 5, ended=True)])  # sequence 2 left the window, 5 is listed
    done, events = await final(live, task)

    assert done.status is TaskStatus.PARTIAL_COMPLETED
    assert live.origin.requests["hls_ts/seg02.ts"] == tried  # out of the window: never swept
    assert live.origin.requests["hls_ts/seg05.ts"] == FAST.max_attempts + 1  # in the window: swept, fetched
    assert any(e.message.startswith("retrying 1 failed segment") for e in events)
    failures = {f.segment_index: f.status for f in await live.store.task_failures(task.id)}
    assert failures == {2: FailureStatus.PENDING, 5: FailureStatus.RESOLVED}
    assert (done.segments_done, done.segments_failed) == (5, 1)


async def test_an_open_circuit_during_a_live_recording_is_an_outage_waited_out(
    origin: Origin, storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    # Three failures in a row open the origin's circuit for longer than a poll's retries wait (Retry-After
    # capped short): the polls meanwhile are refused without being sent, and the follower sees the refusal.
    fetch = replace(FAST, circuit_failures=3, circuit_cooldown=0.3, circuit_cooldown_max=0.6, retry_after_max=0.01)
    harness = Harness(origin, storage, replace(ENGINE, live_outage_seconds=3.0, fetch=fetch))
    try:
        task = await record_until_four(harness)
        origin.chaos(prefix="hls_ts/seg", rate=1.0, seed=1, kinds=("503",), max_consecutive=10**9)
        origin.sequence(LIVE, [playlist(0, 7)])  # 4-7 listed while every segment request fails
        for name, count in ((4, 1), (5, 1), (0, 2), (1, 2)):  # each of 4-7 tried (fixture files 4, 5, 0, 1)
            await origin.wait_requests(f"hls_ts/seg0{name}.ts", count)
        origin.heal()
        origin.sequence(LIVE, [playlist(2, 9, ended=True)])  # the room goes on after the outage
        done, _ = await final(harness, task)
    finally:
        await harness.scheduler.close()

    assert any("circuit open" in r.getMessage() for r in caplog.records)
    assert (done.status, done.segments_total, done.segments_done) == (TaskStatus.COMPLETED, 10, 10)
    assert all(f.status is FailureStatus.RESOLVED for f in await harness.store.task_failures(task.id))
    assert frames(harness, task) == 100


async def test_a_live_run_holds_a_bounded_share_of_its_plan(live: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the catch-up of a long first window nor a long recording lives in the run's memory: planned
    rows wait in the store and are read a slice at a time, finished ones are let go. Before, the run held
    every PENDING segment of the first window (and, earlier still, every segment it ever planned)."""
    monkeypatch.setattr(work, "FEED_SLICE", 4)
    held: list[tuple[int, int]] = []  # (segments the run holds, segments planned) after each finished one
    finish = RunLedger.segment_done

    async def counted(self: RunLedger, segment: Segment, *, size: int, sha256: str, attempts: int) -> None:
        await finish(self, segment, size=size, sha256=sha256, attempts=attempts)
        held.append((self.held(), self.plan.total))

    monkeypatch.setattr(RunLedger, "segment_done", counted)
    window = 40
    slides = [playlist(n, n + window - 1) for n in range(0, 12, 3)]
    live.origin.sequence(LIVE, [*slides, playlist(12, 12 + window - 1, ended=True)])
    task = await live.create(LIVE)
    done = await live.run(task)

    total = 12 + window
    assert (done.status, done.segments_done) == (TaskStatus.COMPLETED, total)
    assert held[-1] == (0, total)
    assert max(count for count, _ in held) <= 4 < window  # one slice read ahead at most, nothing failed
    # The local playlist still lists the whole recording (written from the stored rows at the end).
    assert live.storage.playlist_path(task.id).read_text().count("#EXTINF") == total
    assert frames(live, task) == total * FRAMES_PER_SEGMENT


async def test_a_drained_live_recording_gives_the_allocators_free_memory_back(
    live: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the catch-up is done the follower trims the allocator (its peak would otherwise stay for the
    recording's life), and not at every poll: once per live.TRIM_SECONDS."""
    trims: list[int] = []

    def trim() -> bool:
        trims.append(1)
        return True

    monkeypatch.setattr(memory, "release_free_memory", trim)
    live.origin.sequence(LIVE, [*(playlist(n, n + 2) for n in range(8)), playlist(7, 9, ended=True)])
    task = await live.create(LIVE)
    done = await live.run(task)

    assert (done.status, done.segments_done) == (TaskStatus.COMPLETED, 10)
    assert len(trims) == 1  # 8 answered polls within far less than a minute
