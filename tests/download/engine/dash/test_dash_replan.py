"""DASH's first step of a run that plans (jobs/replan.plan_or_resume): an MPD that cannot be loaded fails the
whole resource, and a resume whose MPD is gone finishes the plan already stored."""

from __future__ import annotations

from download_server.domain.models import ResourceType, TaskStatus
from download_server.engine.jobs.parts import WHOLE
from tests.download.engine.conftest import Harness
from tests.download.engine.dash.media import FRAMES
from tests.support.media import decoded_video_frames

MPD = "timeline/manifest.mpd"


async def test_an_mpd_that_cannot_be_loaded_fails_the_whole_resource(harness: Harness) -> None:
    harness.origin.fail(MPD, status=404, times=None)
    task = await harness.create(MPD, ResourceType.DASH)
    done = await harness.run(task)
    assert done.status is TaskStatus.FAILED
    [failure] = [f for f in harness.store.failures.values() if f.task_id == task.id]
    assert (failure.segment_index, failure.error_type, failure.http_status) == (WHOLE, "http_error", 404)


async def test_a_resume_whose_mpd_is_gone_finishes_the_stored_plan(harness: Harness) -> None:
    gates = [harness.origin.gate(f"timeline/chunk-stream0-0000{n}.m4s") for n in (3, 4)]
    task = await harness.create(MPD, ResourceType.DASH)
    await harness.start_until(task, lambda e: e.segments_done == 6)
    await harness.scheduler.pause(task.id)
    paused = await harness.store.get_task(task.id)
    assert paused.status is TaskStatus.PAUSED
    for gate in gates:
        gate.set()
    harness.origin.fail(MPD, status=404, times=None)
    done = await harness.run(paused, action="resume")

    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert harness.origin.requests[MPD] == 2  # the resume asked, then went on without it
    assert not [f for f in harness.store.failures.values() if f.task_id == task.id]
    assert decoded_video_frames(harness.storage.dash_manifest_path(task.id)) == FRAMES
