"""RetryFailure when the fetch fails again, and on a whole-file failure (segment_index -1), on SQLite and
PostgreSQL: the record stays open with one more attempt, nothing else changes, and a later retry that
succeeds completes the task."""

from __future__ import annotations

from typing import Any

from mediadl.download.v1 import download_pb2 as pb
from tests.download.engine_api.flows import TS, Downloads, seg, sha256


async def retry(flows: Downloads, failure: pb.Failure) -> pb.Failure:
    request = pb.RetryFailureRequest(failure_id=failure.id, task_id=failure.task_id)
    reply: pb.Failure = (await flows.api.stub.RetryFailure(request, metadata=flows.md())).failure
    return reply


async def test_a_segment_that_fails_again_stays_open_and_changes_nothing_else(
    both_downloads: Downloads, manifest: dict[str, Any]
) -> None:
    flows, origin = both_downloads, both_downloads.origin
    origin.fail(seg(1), status=404)
    task = await flows.create(TS)
    assert (await flows.start(task.id))[-1].status == pb.TASK_STATUS_PARTIAL_COMPLETED
    [failure] = await flows.failures(task.id)
    before = await flows.get(task.id)
    playlist = flows.storage.playlist_path(task.id).read_text()

    for attempt in (2, 3):  # twice, so the first failed retry left the record and the lease retryable
        again = await retry(flows, failure)
        assert (again.id, again.status, again.attempts) == (failure.id, pb.FAILURE_STATUS_PENDING, attempt)
        assert (again.segment_index, again.http_status, again.error_type) == (1, 404, "http_error")
    assert origin.requests[seg(1)] == 3 and origin.completed[seg(1)] == 0
    assert [f.id for f in await flows.failures(task.id)] == [failure.id]  # no second record
    after = await flows.get(task.id)
    assert (after.status, after.segments_done, after.segments_failed, after.retry_count) == (
        before.status,
        before.segments_done,
        before.segments_failed,
        before.retry_count,
    )
    assert flows.storage.playlist_path(task.id).read_text() == playlist
    assert [p.name for p in flows.segment_files(task.id)] == ["0.ts", "2.ts", "3.ts", "4.ts", "5.ts"]

    origin.heal()
    resolved = await retry(flows, failure)
    assert (resolved.status, resolved.attempts) == (pb.FAILURE_STATUS_RESOLVED, 4)
    done = await flows.get(task.id)
    assert (done.status, done.segments_done, done.segments_failed) == (pb.TASK_STATUS_COMPLETED, 6, 0)
    assert flows.segment_hashes(task.id) == manifest["hls_ts"]["segment_sha256"]
    assert "DISCONTINUITY" not in flows.storage.playlist_path(task.id).read_text()


async def test_a_whole_file_failure_is_retried_as_the_whole_file(
    both_downloads: Downloads, manifest: dict[str, Any]
) -> None:
    flows, origin = both_downloads, both_downloads.origin
    path = manifest["mp4"]["file"]
    origin.fail(path, status=404)
    task = await flows.create(path, "MP4")
    assert (await flows.start(task.id))[-1].status == pb.TASK_STATUS_FAILED
    [failure] = await flows.failures(task.id)
    assert (failure.segment_index, failure.http_status, failure.status) == (-1, 404, pb.FAILURE_STATUS_PENDING)

    again = await retry(flows, failure)
    assert (again.status, again.attempts, again.segment_index) == (pb.FAILURE_STATUS_PENDING, failure.attempts + 1, -1)
    assert (await flows.get(task.id)).status == pb.TASK_STATUS_FAILED
    assert [f.id for f in await flows.failures(task.id)] == [failure.id]
    stored = await flows.api.store.get_task(task.id)
    assert not flows.storage.mp4_path(stored).exists()

    origin.heal()
    resolved = await retry(flows, failure)
    assert (resolved.status, resolved.segment_index) == (pb.FAILURE_STATUS_RESOLVED, -1)
    done = await flows.get(task.id)
    assert (done.status, done.segments_failed) == (pb.TASK_STATUS_COMPLETED, 0), done.last_error
    assert sha256(flows.storage.mp4_path(stored)) == manifest["mp4"]["sha256"]
    video = await flows.video(task)
    assert (video.format, video.file_size) == ("mp4", flows.storage.mp4_path(stored).stat().st_size)
    assert origin.completed[path] == 1
