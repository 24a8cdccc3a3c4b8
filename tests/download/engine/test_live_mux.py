"""The HLS recording's MP4 built while its segments download (engine/output/live_mux.py): out of order
completion, a gap the final sweep fills, a pause and a crash mid-build; what the whole remux would build."""

from __future__ import annotations

from pathlib import Path

from download_server.domain.models import OutputFormat, Task, TaskStatus
from download_server.engine.output.live_mux import building_path
from download_server.engine.output.remux import build_mp4, runs_of
from tests.download.engine.conftest import ENGINE, Harness
from tests.download.engine.test_output import playable, probe
from tests.support.media import decoded_video_frames
from tests.support.origin import Origin
from tests.support.replicas import recover_to_the_end

SEGMENTS = [f"hls_ts/seg0{i}.ts" for i in range(6)]


async def mp4_task(harness: Harness) -> Task:
    task = await harness.create("hls_ts/index.m3u8")
    task.output_format = OutputFormat.MP4
    await harness.store.save_task(task)
    return task


def fragmented(mp4: Path) -> bool:
    """Built while downloading (fragmented: moof boxes), not by the whole remux after it (faststart)."""
    return b"moof" in mp4.read_bytes()


async def test_out_of_order_segments_build_what_the_whole_remux_builds(harness: Harness, origin: Origin) -> None:
    first = origin.gate(SEGMENTS[0])  # every other segment finishes before the first one
    task = await mp4_task(harness)
    await harness.start_until(task, lambda event: event.segments_done == 5)
    target = harness.storage.hls_mp4_path(task)
    assert not target.exists()  # nothing under the final name while the build runs
    first.set()
    await harness.until_stream_ends(task.id)
    assert (await harness.store.get_task(task.id)).status is TaskStatus.COMPLETED
    (video,) = harness.store.videos.values()
    assert harness.storage.root / video.file_path == target and fragmented(target)
    assert not building_path(target).exists()
    playable(target, 60, video.duration_seconds)

    whole = target.with_name("whole.mp4")
    build_mp4(list(runs_of([(path, None, False) for path in harness.segment_files(task)])), whole)
    assert decoded_video_frames(whole) == decoded_video_frames(target)
    streams = {s["codec_type"]: s for s in probe(target)["streams"]}
    for stream in probe(whole)["streams"]:
        built = streams[stream["codec_type"]]
        assert abs(float(built["duration"]) - float(stream["duration"])) <= 0.1, stream["codec_type"]


async def test_a_gap_the_final_sweep_fills_joins_the_build(backend_harness: Harness, origin: Origin) -> None:
    harness = backend_harness  # on S3 too: the MP4 built in the work area is published like the whole remux's
    origin.fail(SEGMENTS[2], status=503, times=ENGINE.fetch.max_attempts)  # fails, then the sweep gets it
    task = await mp4_task(harness)
    assert (await harness.run(task)).status is TaskStatus.COMPLETED
    (video,) = harness.store.videos.values()
    mp4 = harness.view().root / video.file_path
    assert fragmented(mp4) and origin.requests[SEGMENTS[2]] > ENGINE.fetch.max_attempts
    playable(mp4, 60, video.duration_seconds)


async def test_a_failed_segment_then_a_retry_rebuilds_from_the_segments(harness: Harness, origin: Origin) -> None:
    origin.fail(SEGMENTS[3], status=404, times=None)
    task = await mp4_task(harness)
    assert (await harness.run(task)).status is TaskStatus.PARTIAL_COMPLETED
    (video,) = harness.store.videos.values()
    mp4 = harness.storage.root / video.file_path
    # The gap stopped the incremental build: the whole remux made this one, of the five segments there are.
    assert not fragmented(mp4) and not building_path(mp4).exists()
    playable(mp4, 50, video.duration_seconds)
    origin.heal()
    assert (await harness.run(task, action="retry")).status is TaskStatus.COMPLETED
    video = next(v for v in harness.store.videos.values() if v.task_id == task.id)
    playable(harness.storage.root / video.file_path, 60, video.duration_seconds)


async def test_a_pause_mid_build_then_resume_gives_a_valid_mp4(harness: Harness, origin: Origin) -> None:
    held = origin.gate(SEGMENTS[3])
    task = await mp4_task(harness)
    await harness.start_until(task, lambda event: event.segments_done >= 3)
    target = harness.storage.hls_mp4_path(task)
    await harness.scheduler.pause(task.id)
    held.set()
    assert (await harness.store.get_task(task.id)).status is TaskStatus.PAUSED
    assert not target.exists() and not building_path(target).exists()  # the stopped build left nothing
    assert (await harness.run(task, action="resume")).status is TaskStatus.COMPLETED
    (video,) = harness.store.videos.values()
    playable(harness.storage.root / video.file_path, 60, video.duration_seconds)


async def test_a_crash_mid_build_leaves_no_mp4_until_a_run_ends(origin: Origin, harness: Harness) -> None:
    held = origin.gate(SEGMENTS[4])
    task = await mp4_task(harness)
    await harness.start_until(task, lambda event: event.segments_done >= 4)
    target = harness.storage.hls_mp4_path(task)
    await harness.scheduler.drain()  # the run is handed back mid-build, as a stopped process leaves it
    held.set()
    assert (await harness.store.get_task(task.id)).status is TaskStatus.PROCESSING
    assert not target.exists()
    building_path(target).write_bytes(b"what a killed process leaves: half a build")
    await recover_to_the_end(Harness(origin, harness.storage, ENGINE, store=harness.store), task.id)
    assert (await harness.store.get_task(task.id)).status is TaskStatus.COMPLETED
    (video,) = harness.store.videos.values()
    assert not building_path(target).exists()
    playable(harness.storage.root / video.file_path, 60, video.duration_seconds)
