"""Live DASH (a dynamic MPD that grows) and the engine's answers to hostile MPDs and stops mid-download."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from download_server.domain.models import LIVE_GAP, FailureStatus, ResourceType, SegmentStatus, TaskStatus
from download_server.engine.files.layout import Storage
from download_server.engine.http.guard import PolicyGuard
from download_server.engine.scheduling.scheduler import create_scheduler
from tests.download.engine.conftest import ENGINE, Harness
from tests.download.engine.dash.media import FPS, FRAMES, SECONDS, timeline_entries
from tests.download.engine.memory_leases import MemoryLeases
from tests.support.media import decoded_video_frames
from tests.support.origin import Origin

LIVE = "timeline/live.mpd"


def _window(text: str, first: int, last: int, *, dynamic: bool = True, shift: int = 0) -> bytes:
    """ffmpeg's timeline MPD listing only segments first..last (1-based), as a live packager's window does;
    `shift` seconds move its time line (the same files: a packager that ran longer before)."""
    entries = timeline_entries(text)
    for rep, times in entries.items():
        scale = 12800 if rep == "0" else 44100  # ffmpeg's timescales for the video and the audio stream
        listed = "".join(f'<S t="{t + shift * scale}" d="{d}" />' for t, d in times[first - 1 : last])
        pattern = rf'(<Representation id="{rep}".*?startNumber=")1(".*?<SegmentTimeline>).*?(</SegmentTimeline>)'
        text = re.sub(pattern, rf"\g<1>{first}\g<2>{listed}\g<3>", text, count=1, flags=re.S)
    head = 'type="dynamic" availabilityStartTime="2026-01-01T00:00:00Z" minimumUpdatePeriod="PT1S"'
    text = text.replace('type="static"', head if dynamic else 'type="static"')
    if dynamic:
        text = re.sub(r'mediaPresentationDuration="[^"]*"', "", text)
    return text.encode()


def _source(origin: Origin) -> str:
    return (origin.root / "timeline" / "manifest.mpd").read_text()


async def test_live_mpd_is_followed_through_a_dropped_poll(harness: Harness) -> None:
    text = _source(harness.origin)
    harness.origin.sequence(
        LIVE, [_window(text, 1, 2), _window(text, 1, 3), _window(text, 2, 4), _window(text, 1, 4, dynamic=False)]
    )
    task = await harness.create(LIVE, ResourceType.DASH)
    with harness.broker.subscribe(task_id=task.id) as sub:
        await harness.scheduler.start(task.id)
        await harness.origin.wait_requests(LIVE, 2)
        harness.origin.fail(LIVE, status=404, times=3)  # the MPD drops for three polls, then answers again
        async for event in sub:
            if event.status.ends_stream:
                break
    done = await harness.store.get_task(task.id)

    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert done.live
    assert (done.segments_total, done.segments_done) == (8, 8)
    assert decoded_video_frames(harness.storage.dash_manifest_path(task.id)) == FRAMES
    assert harness.origin.requests[LIVE] >= 4 + 3


async def test_a_403_then_a_swapped_url_goes_on(harness: Harness) -> None:
    """A signed live MPD expires (403); the caller swaps resource_url (UpdateTask) and nothing is lost."""
    text = _source(harness.origin)
    signed_a, signed_b = "timeline/signed-a.mpd", "timeline/signed-b.mpd"
    harness.origin.sequence(signed_a, [_window(text, 1, 2)])
    harness.origin.sequence(signed_b, [_window(text, 2, 4, dynamic=False)])
    task = await harness.create(signed_a, ResourceType.DASH)
    with harness.broker.subscribe(task_id=task.id) as sub:
        await harness.scheduler.start(task.id)
        await harness.origin.wait_requests(signed_a, 2)
        harness.origin.fail(signed_a, status=403, times=None)  # the signature expired
        await harness.origin.wait_requests(signed_a, harness.origin.requests[signed_a] + 2)
        stored = await harness.store.get_task(task.id)
        stored.resource_url = harness.origin.url(signed_b)  # what UpdateTask leaves in the row
        await harness.store.save_task(stored)
        async for event in sub:
            if event.status.ends_stream:
                break
    done = await harness.store.get_task(task.id)

    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert done.segments_total == 8 and done.resource_url.endswith("signed-b.mpd")
    media = {p: n for p, n in harness.origin.completed.items() if "chunk-stream" in p}
    assert len(media) == 8 and set(media.values()) == {1}  # nothing fetched twice across the swap
    assert decoded_video_frames(harness.storage.dash_manifest_path(task.id)) == FRAMES


async def test_media_that_left_the_window_is_a_live_gap(harness: Harness) -> None:
    text = _source(harness.origin)
    # The window jumps from 1-2 to 4: segment 3 was never listed to us while it could be fetched.
    harness.origin.sequence(LIVE, [_window(text, 1, 2), _window(text, 4, 4), _window(text, 4, 4, dynamic=False)])
    task = await harness.create(LIVE, ResourceType.DASH)
    done = await harness.run(task)

    assert done.status is TaskStatus.PARTIAL_COMPLETED, done.last_error
    failures = await harness.store.task_failures(task.id)
    gaps = [f for f in failures if f.error_type == LIVE_GAP]
    assert len(gaps) == 2 and all(f.status is FailureStatus.ABANDONED for f in gaps)
    assert "left the live window" in gaps[0].error_message
    segments = await harness.store.list_segments(task.id)
    video = [s for s in segments if s.index % 2 == 0]
    assert [s.discontinuity for s in video] == [False, False, True]
    assert decoded_video_frames(harness.storage.dash_manifest_path(task.id)) >= 2 * FPS


async def test_an_encoder_restart_is_a_discontinuity_not_a_refetch(harness: Harness) -> None:
    text = _source(harness.origin)
    # An hour into the stream the packager restarts: its time line starts again from 0 with new numbers.
    before, after = _window(text, 1, 2, shift=3600), _window(text, 3, 4, dynamic=False)
    harness.origin.sequence(LIVE, [before, after])
    task = await harness.create(LIVE, ResourceType.DASH)
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED, done.last_error
    segments = await harness.store.list_segments(task.id)
    assert [s.discontinuity for s in segments if s.index % 2 == 0] == [False, False, True, False]
    assert not [f for f in await harness.store.task_failures(task.id) if f.error_type == LIVE_GAP]
    media = {p: n for p, n in harness.origin.completed.items() if "chunk-stream" in p}
    assert len(media) == 8 and set(media.values()) == {1}


def _scheduled(origin: Origin, ahead: float) -> bytes:
    """ffmpeg's $Number$ MPD as a live packager announces it `ahead` seconds before its stream begins: it lists
    1 s segments from availabilityStartTime on, none before."""
    text = (origin.root / "number" / "manifest.mpd").read_text()
    start = (datetime.now(UTC) + timedelta(seconds=ahead)).isoformat()
    head = f'type="dynamic" availabilityStartTime="{start}" minimumUpdatePeriod="PT1S"'
    text = re.sub(r'mediaPresentationDuration="[^"]*"', "", text.replace('type="static"', head))
    return text.encode()


async def test_a_live_mpd_announced_before_its_start_is_waited_for(harness: Harness) -> None:
    harness.origin.write("number/scheduled.mpd", _scheduled(harness.origin, 1.0))
    task = await harness.create("number/scheduled.mpd", ResourceType.DASH)
    task.max_duration_seconds = 2
    await harness.store.save_task(task)
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert done.live and done.segments_total == 4  # two seconds of video and of audio, from the start on
    segments = await harness.store.list_segments(task.id)
    assert [s.uri.rsplit("/", 1)[1] for s in segments if s.index % 2 == 0] == [
        "chunk-stream0-00001.m4s",
        "chunk-stream0-00002.m4s",
    ]
    assert harness.origin.requests["number/scheduled.mpd"] >= 2  # asked again once the stream had begun


async def test_a_live_mpd_starting_past_the_outage_grace_fails_at_once(harness: Harness) -> None:
    harness.origin.write("number/later.mpd", _scheduled(harness.origin, 3600.0))
    task = await harness.create("number/later.mpd", ResourceType.DASH)
    done = await harness.run(task)

    assert done.status is TaskStatus.FAILED
    failures = await harness.store.task_failures(task.id)
    assert [(f.segment_index, f.error_type) for f in failures] == [(-1, "playlist_error")]
    assert re.search(r"starts in 3[56]\d\d s", done.last_error) and "DOWNLOAD_LIVE_OUTAGE_SECONDS" in done.last_error
    assert harness.origin.requests["number/later.mpd"] == 1


async def test_max_duration_ends_a_live_recording(harness: Harness) -> None:
    text = _source(harness.origin)
    harness.origin.sequence(LIVE, [_window(text, 1, 2), _window(text, 1, 4)])
    task = await harness.create(LIVE, ResourceType.DASH)
    task.max_duration_seconds = 2
    await harness.store.save_task(task)
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert done.segments_total == 4  # two seconds of video and of audio
    assert "max_duration_seconds" in harness.last_events[-1].message


async def test_pause_and_resume_fetch_nothing_twice(harness: Harness) -> None:
    gates = [harness.origin.gate(f"timeline/chunk-stream0-0000{n}.m4s") for n in (3, 4)]
    task = await harness.create("timeline/manifest.mpd", ResourceType.DASH)
    await harness.start_until(task, lambda e: e.segments_done == 6)
    await harness.scheduler.pause(task.id)
    paused = await harness.store.get_task(task.id)
    assert (paused.status, paused.segments_done) == (TaskStatus.PAUSED, 6)
    for gate in gates:
        gate.set()
    done = await harness.run(paused, action="resume")

    assert done.status is TaskStatus.COMPLETED, done.last_error
    media = {p: n for p, n in harness.origin.requests.items() if p.endswith(".m4s") and "chunk" in p}
    assert media == {p: (2 if p.endswith(("0-00003.m4s", "0-00004.m4s")) else 1) for p in media}
    assert decoded_video_frames(harness.storage.dash_manifest_path(task.id)) == FRAMES


@pytest.fixture
async def strict(origin: Origin, storage: Storage) -> AsyncIterator[Harness]:
    """A harness whose URL policy refuses private addresses, except the loopback origin itself."""

    class OriginOnly:
        def __init__(self) -> None:
            self.policy = PolicyGuard(allow_private=False)

        async def check(self, url: str) -> None:
            if not url.startswith(origin.url("")):
                await self.policy.check(url)

        def address_allowed(self, address: str) -> bool:
            return address == "127.0.0.1" or self.policy.address_allowed(address)

    engine = Harness(origin, storage, ENGINE)
    await engine.scheduler.close()
    settings = replace(ENGINE, storage_dir=storage.root, allow_private_networks=False)
    engine.scheduler = create_scheduler(engine.store, settings, leases=MemoryLeases(engine.store), guard=OriginOnly())
    engine.broker = engine.scheduler.broker
    yield engine
    await engine.scheduler.close()


async def test_a_base_url_to_a_private_address_fails_the_task_before_any_fetch(strict: Harness) -> None:
    text = _source(strict.origin).replace("<Period", "<BaseURL>http://10.0.0.7/media/</BaseURL><Period", 1)
    strict.origin.write("timeline/private.mpd", text.encode())
    task = await strict.create("timeline/private.mpd", ResourceType.DASH)
    done = await strict.run(task)

    assert done.status is TaskStatus.FAILED
    failures = await strict.store.task_failures(task.id)
    assert [(f.segment_index, f.error_type) for f in failures] == [(-1, "url_refused")]
    assert "refused address" in done.last_error
    assert done.segments_total == 0


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        (b'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT1S"><Period>'
         b'<AdaptationSet mimeType="video/mp4"><Representation id="v" bandwidth="1"><SegmentTemplate media="$Time$">'
         b'<SegmentTimeline><S d="1" r="999999999"/></SegmentTimeline></SegmentTemplate></Representation>'
         b"</AdaptationSet></Period></MPD>", "too_large"),
        (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
         b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><MPD>&c;</MPD>', "bad_content"),
    ],
    ids=["billion-r", "billion-laughs"],
)  # fmt: skip
async def test_hostile_mpds_end_the_task_with_one_clear_failure(harness: Harness, body: bytes, error_type: str) -> None:
    harness.origin.write("hostile.mpd", body)
    task = await harness.create("hostile.mpd", ResourceType.DASH)
    done = await harness.run(task)

    assert done.status is TaskStatus.FAILED
    failures = await harness.store.task_failures(task.id)
    assert [(f.segment_index, f.error_type) for f in failures] == [(-1, error_type)]
    assert done.segments_total == 0


async def test_segments_left_pending_by_a_crash_are_fetched_by_the_next_run(harness: Harness, tmp_path: Path) -> None:
    """kill -9 mid-download: rows say PENDING for what was in flight; a restart (recover) finishes the rest
    and keeps what is on disk."""
    gates = [harness.origin.gate(f"timeline/chunk-stream1-0000{n}.m4s") for n in (3, 4)]
    task = await harness.create("timeline/manifest.mpd", ResourceType.DASH)
    await harness.start_until(task, lambda e: e.segments_done == 6)
    await harness.scheduler.close()  # the process goes away; the task stays PROCESSING
    stored = await harness.store.get_task(task.id)
    assert stored.status is TaskStatus.PROCESSING
    for gate in gates:
        gate.set()

    again = Harness(harness.origin, harness.storage, ENGINE, store=harness.store)
    try:
        with again.broker.subscribe(task_id=task.id) as sub:
            await again.scheduler.recover()
            async for event in sub:
                if event.status.ends_stream:
                    break
        done = await again.store.get_task(task.id)
    finally:
        await again.scheduler.close()

    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert all(s.status is SegmentStatus.DONE for s in await again.store.list_segments(task.id))
    video = [p for p, n in harness.origin.requests.items() if "chunk-stream0" in p]
    assert all(harness.origin.requests[p] == 1 for p in video)  # finished video was not fetched again
    assert decoded_video_frames(again.storage.dash_manifest_path(task.id)) == FRAMES
    assert SECONDS * FPS == FRAMES
