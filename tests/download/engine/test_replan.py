"""The first step of a run that plans (jobs/replan.plan_or_resume), for HLS; DASH's in dash/test_dash_replan.py:
a playlist that cannot be loaded fails the whole resource, an empty one too, and a resume whose playlist is
gone finishes the plan already stored."""

from __future__ import annotations

from download_server.domain.models import Task, TaskStatus
from download_server.engine.jobs.parts import WHOLE
from tests.download.engine.conftest import Harness


def whole_failures(harness: Harness, task: Task) -> list[tuple[str, int, str]]:
    return [
        (f.error_type, f.http_status, f.error_message)
        for f in harness.store.failures.values()
        if f.task_id == task.id and f.segment_index == WHOLE
    ]


async def test_a_playlist_that_cannot_be_loaded_fails_the_whole_resource(harness: Harness) -> None:
    harness.origin.fail("hls_ts/index.m3u8", status=404, times=None)
    task = await harness.create("hls_ts/index.m3u8")
    done = await harness.run(task)
    assert done.status is TaskStatus.FAILED
    [(error_type, status, _)] = whole_failures(harness, task)
    assert (error_type, status) == ("http_error", 404)


async def test_a_playlist_without_segments_fails_the_whole_resource(harness: Harness) -> None:
    harness.origin.write("empty/index.m3u8", b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-ENDLIST\n")
    task = await harness.create("empty/index.m3u8")
    done = await harness.run(task)
    assert done.status is TaskStatus.FAILED
    assert whole_failures(harness, task) == [("playlist_error", 0, "the playlist lists no segments")]


async def test_a_resume_whose_playlist_is_gone_finishes_the_stored_plan(harness: Harness) -> None:
    gate = harness.origin.gate("hls_ts/seg03.ts")
    task = await harness.create("hls_ts/index.m3u8")
    await harness.start_until(task, lambda e: e.segments_done >= 3)
    await harness.scheduler.pause(task.id)
    paused = await harness.store.get_task(task.id)
    assert paused.status is TaskStatus.PAUSED
    gate.set()
    harness.origin.fail("hls_ts/index.m3u8", status=404, times=None)
    done = await harness.run(paused, action="resume")

    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert (done.segments_done, done.segments_failed) == (6, 0)
    assert harness.origin.requests["hls_ts/index.m3u8"] == 2  # the resume asked, then went on without it
    assert whole_failures(harness, task) == []
