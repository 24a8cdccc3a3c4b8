"""A task's life through the gRPC API against a real local origin: failures and the retries that fetch only
what failed, a misbehaving origin, pause/resume, cancel, delete while running, live playlists, URL changes."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from download_server.domain.models import SegmentStatus
from mediadl.download.v1 import download_pb2 as pb
from tests.download.api import rpc_failure
from tests.download.engine_api.flows import TS, Downloads, events_of, is_monotonic, seg, sha256, until
from tests.support.media import decoded_video_frames


async def test_permanent_404s_then_retry_failure_and_retry_task_complete_the_task(
    both_downloads: Downloads, manifest: dict[str, Any]
) -> None:
    flows, origin = both_downloads, both_downloads.origin
    for i in (1, 4):
        origin.fail(seg(i), status=404)
    task = await flows.create(TS)
    events = await flows.start(task.id)

    assert events[-1].status == pb.TASK_STATUS_PARTIAL_COMPLETED
    assert (events[-1].segments_done, events[-1].segments_failed) == (4, 2)
    failures = await flows.failures(task.id)
    assert [(f.segment_index, f.http_status, f.error_type, f.status) for f in failures] == [
        (1, 404, "http_error", pb.FAILURE_STATUS_PENDING),
        (4, 404, "http_error", pb.FAILURE_STATUS_PENDING),
    ]
    assert failures[0].segment_url == origin.url(seg(1))
    local = flows.storage.playlist_path(task.id)
    assert local.read_text().count("#EXT-X-DISCONTINUITY") == 2
    assert (await flows.video(task)).segment_count == 4

    origin.heal()
    retried = await flows.api.stub.RetryFailure(
        pb.RetryFailureRequest(failure_id=failures[0].id, task_id=task.id), metadata=flows.md()
    )
    assert (retried.failure.status, retried.failure.attempts) == (pb.FAILURE_STATUS_RESOLVED, 2)
    after_one = await flows.get(task.id)
    assert (after_one.status, after_one.segments_failed, after_one.retry_count) == (
        pb.TASK_STATUS_PARTIAL_COMPLETED,
        1,
        0,
    )
    again = await rpc_failure(
        flows.api.stub.RetryFailure(pb.RetryFailureRequest(failure_id=failures[0].id), metadata=flows.md())
    )
    assert (again.code, again.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "FAILURE_CLOSED")

    events = await flows.retry(task.id)
    assert events[-1].status == pb.TASK_STATUS_COMPLETED
    done = await flows.get(task.id)
    assert (done.status, done.retry_count, done.segments_done, done.segments_failed, done.progress) == (
        pb.TASK_STATUS_COMPLETED,
        1,
        6,
        0,
        1.0,
    )
    assert {f.status for f in await flows.failures(task.id)} == {pb.FAILURE_STATUS_RESOLVED}
    # Only the two failed segments were asked for again, each once; nothing else was refetched.
    assert [origin.requests[seg(i)] for i in range(6)] == [1, 2, 1, 1, 2, 1]
    assert flows.served("hls_ts/seg") == {seg(i): 1 for i in range(6)}
    assert "DISCONTINUITY" not in local.read_text()  # the local playlist was rewritten
    assert (await flows.video(task)).segment_count == 6
    assert flows.segment_hashes(task.id) == manifest["hls_ts"]["segment_sha256"]
    assert decoded_video_frames(local) == manifest["hls_ts"]["video_frames"]


async def test_an_abandoned_failure_leaves_the_task_partial(downloads: Downloads) -> None:
    downloads.origin.fail(seg(2, "hls_fmp4", "m4s"), status=410)
    task = await downloads.create("hls_fmp4/index.m3u8")
    assert (await downloads.start(task.id))[-1].status == pb.TASK_STATUS_PARTIAL_COMPLETED
    [failure] = await downloads.failures(task.id)
    downloads.origin.heal()

    abandoned = await downloads.api.stub.AbandonFailure(
        pb.AbandonFailureRequest(failure_id=failure.id), metadata=downloads.md()
    )
    assert abandoned.failure.status == pb.FAILURE_STATUS_ABANDONED
    assert (await downloads.get(task.id)).status == pb.TASK_STATUS_PARTIAL_COMPLETED
    nothing_open = await rpc_failure(events_of(downloads.retry_stream(task.id)))
    assert nothing_open.code == grpc.StatusCode.FAILED_PRECONDITION
    closed = await rpc_failure(
        downloads.api.stub.RetryFailure(pb.RetryFailureRequest(failure_id=failure.id), metadata=downloads.md())
    )
    assert closed.code == grpc.StatusCode.FAILED_PRECONDITION
    assert (await downloads.get(task.id)).status == pb.TASK_STATUS_PARTIAL_COMPLETED
    assert downloads.origin.requests[seg(2, "hls_fmp4", "m4s")] == 1


@pytest.mark.parametrize(("fixture", "kind"), [("hls_ts", "HLS"), ("hls_aes128", "HLS"), ("mp4", "MP4")])
async def test_a_misbehaving_origin_still_gives_identical_bytes(
    downloads: Downloads, manifest: dict[str, Any], fixture: str, kind: str
) -> None:
    origin, expected = downloads.origin, manifest[fixture]
    first = expected.get("file") or f"{fixture}/seg00.ts"
    origin.truncate(first)  # at least these faults, whatever the dice say
    origin.fail(expected.get("file") or f"{fixture}/seg01.ts", status=503, times=1)
    origin.reset(expected.get("file") or f"{fixture}/seg02.ts")
    origin.chaos(prefix=f"{fixture}/", rate=0.5, seed=4242)
    task = await downloads.create(expected.get("playlist") or expected["file"], kind)
    events = await downloads.start(task.id)

    assert events[-1].status == pb.TASK_STATUS_COMPLETED, events[-1].message
    assert await downloads.failures(task.id) == []
    if kind == "MP4":
        stored = await downloads.api.store.get_task(task.id)
        assert sha256(downloads.storage.mp4_path(stored)) == expected["sha256"]
    else:
        hashes = expected.get("segment_sha256") or expected["plaintext_segment_sha256"]
        assert downloads.segment_hashes(task.id) == hashes
    # Every forced fault cost one more request (chaos may add more): 1 file + 3, or 6 segments + playlist + 3.
    served = sum(origin.requests[p] for p in origin.requests if p.startswith(fixture))
    assert served >= (4 if kind == "MP4" else 10)
    if kind == "MP4":  # the truncated body was continued with Range, not fetched again from zero
        assert any(header and header != "bytes=0-" for header in origin.range_headers[expected["file"]])


async def test_pause_then_resume_fetches_nothing_complete_again(downloads: Downloads, manifest: dict[str, Any]) -> None:
    origin = downloads.origin
    gates = [origin.gate(seg(i)) for i in (3, 4, 5)]
    task = await downloads.create(TS)
    stream = downloads.start_stream(task.id)
    await until(stream, lambda e: e.segments_done == 3)

    paused = await downloads.act("PauseTask", task.id)
    assert (paused.status, paused.segments_done) == (pb.TASK_STATUS_PAUSED, 3)
    rest = await events_of(stream)  # the StartTask stream ends after the PAUSED event
    assert rest[-1].status == pb.TASK_STATUS_PAUSED
    segments = await downloads.api.store.list_segments(task.id)
    assert [s.status for s in segments] == [SegmentStatus.DONE] * 3 + [SegmentStatus.PENDING] * 3
    for gate in gates:
        gate.set()

    resumed = await downloads.act("ResumeTask", task.id)
    assert resumed.status == pb.TASK_STATUS_PROCESSING
    events = await downloads.watch(task.id)
    assert events[-1].status == pb.TASK_STATUS_COMPLETED
    assert downloads.served("hls_ts/seg") == {seg(i): 1 for i in range(6)}
    assert downloads.segment_hashes(task.id) == manifest["hls_ts"]["segment_sha256"]


async def test_cancel_stops_the_download_and_a_later_start_keeps_what_was_done(downloads: Downloads) -> None:
    origin = downloads.origin
    gates = [origin.gate(seg(i)) for i in (3, 4, 5)]
    task = await downloads.create(TS)
    stream = downloads.start_stream(task.id)
    await until(stream, lambda e: e.segments_done == 3)

    cancelled = await downloads.act("CancelTask", task.id)
    assert cancelled.status == pb.TASK_STATUS_CANCELLED and cancelled.HasField("complete_time")
    assert (await events_of(stream))[-1].status == pb.TASK_STATUS_CANCELLED
    for gate in gates:
        gate.set()
    assert (await downloads.start(task.id))[-1].status == pb.TASK_STATUS_COMPLETED
    assert downloads.served("hls_ts/seg") == {seg(i): 1 for i in range(6)}


async def test_delete_while_running_stops_it_then_removes_rows_and_files(downloads: Downloads) -> None:
    origin = downloads.origin
    gates = [origin.gate(seg(i)) for i in (3, 4, 5)]
    task = await downloads.create(TS)
    stream = downloads.start_stream(task.id)
    await until(stream, lambda e: e.segments_done == 3)
    hls_dir = downloads.storage.hls_dir(task.id)
    assert len(downloads.segment_files(task.id)) == 3

    request = pb.DeleteTaskRequest(task_id=task.id, delete_files=True)
    await downloads.api.stub.DeleteTask(request, metadata=downloads.md())
    last = (await events_of(stream))[-1]  # watchers are told, and their streams end
    assert (last.status, last.message) == (pb.TASK_STATUS_CANCELLED, "deleted")
    gone = await rpc_failure(downloads.api.stub.GetTask(pb.GetTaskRequest(task_id=task.id), metadata=downloads.md()))
    assert gone.code == grpc.StatusCode.NOT_FOUND
    assert not hls_dir.exists()
    assert await downloads.api.store.list_segments(task.id) == []
    # Stopped before the rows went: the scheduler runs nothing. Once the origin may answer and every held
    # request is over, none was read to the end and nothing came back to disk.
    registry = downloads.api.running.metrics.registry
    assert registry.get_sample_value("mediadl_download_tasks", {"status": "PROCESSING"}) == 0
    for gate in gates:
        gate.set()
    for i in (3, 4, 5):
        await asyncio.wait_for(origin.wait_settled(seg(i)), timeout=30)
    assert [origin.completed[seg(i)] for i in (3, 4, 5)] == [0, 0, 0]
    assert not hls_dir.exists()
    assert await downloads.api.store.list_segments(task.id) == []


def live_version(first: int, last: int, *, ended: bool) -> bytes:
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:1", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    for i in range(first, last + 1):
        lines += ["#EXTINF:1.0,", f"../hls_ts/seg0{i}.ts"]
    return "\n".join([*lines, *(["#EXT-X-ENDLIST"] if ended else []), ""]).encode()


async def test_a_live_playlist_that_grows_and_then_ends(downloads: Downloads, manifest: dict[str, Any]) -> None:
    origin = downloads.origin
    origin.sequence(
        "live/index.m3u8",
        [
            live_version(0, 1, ended=False),
            live_version(0, 3, ended=False),
            live_version(0, 3, ended=False),
            live_version(2, 5, ended=False),  # the window slides past 0 and 1
            live_version(2, 5, ended=True),
        ],
    )
    task = await downloads.create("live/index.m3u8")
    events = await downloads.start(task.id)

    assert events[-1].status == pb.TASK_STATUS_COMPLETED
    totals = [e.segments_total for e in events]
    assert totals == sorted(totals) and totals[-1] == 6 and any(0 < t < 6 for t in totals)  # seen growing
    assert origin.requests["live/index.m3u8"] == 5
    assert downloads.served("hls_ts/seg") == {seg(i): 1 for i in range(6)}
    assert downloads.segment_hashes(task.id) == manifest["hls_ts"]["segment_sha256"]
    local = downloads.storage.playlist_path(task.id)
    assert "#EXT-X-ENDLIST" in local.read_text()
    assert decoded_video_frames(local) == manifest["hls_ts"]["video_frames"]


async def test_a_new_resource_url_starts_over_from_nothing(downloads: Downloads) -> None:
    origin = downloads.origin
    origin.write("mp4/other.mp4", b"\x00\x00\x00\x08free" + bytes(range(256)) * 40)
    hold = origin.hold("mp4/clip.mp4")  # half the file arrives, then the origin waits
    task = await downloads.create("mp4/clip.mp4", "MP4")
    stream = downloads.start_stream(task.id)
    await until(stream, lambda e: e.bytes_downloaded > 0)
    await downloads.act("CancelTask", task.id)
    hold.set()
    stored = await downloads.api.store.get_task(task.id)
    partial = downloads.storage.mp4_path(stored).with_name(downloads.storage.mp4_path(stored).name + ".part")
    assert partial.is_file()  # what a later start would continue with Range

    request = pb.UpdateTaskRequest(
        task_id=task.id, resource_url=origin.url("mp4/other.mp4"), update_mask=FieldMask(paths=["resource_url"])
    )
    updated = (await downloads.api.stub.UpdateTask(request, metadata=downloads.md())).task
    assert (updated.status, updated.bytes_downloaded) == (pb.TASK_STATUS_PENDING, 0)
    assert not partial.exists() and await downloads.api.store.list_segments(task.id) == []

    assert (await downloads.start(task.id))[-1].status == pb.TASK_STATUS_COMPLETED
    assert downloads.storage.mp4_path(stored).read_bytes() == (origin.root / "mp4/other.mp4").read_bytes()
    assert origin.range_headers["mp4/other.mp4"] == [None]  # a whole fetch: nothing of the old file resumed


async def test_a_failed_task_given_a_good_url_completes_without_its_old_failures(downloads: Downloads) -> None:
    task = await downloads.create("missing/index.m3u8")
    assert (await downloads.start(task.id))[-1].status == pb.TASK_STATUS_FAILED
    [old] = await downloads.failures(task.id)
    assert (old.segment_index, old.http_status, old.status) == (-1, 404, pb.FAILURE_STATUS_PENDING)

    request = pb.UpdateTaskRequest(task_id=task.id, resource_url=downloads.origin.url(TS))
    await downloads.api.stub.UpdateTask(request, metadata=downloads.md())
    [closed] = await downloads.failures(task.id)
    assert closed.status == pb.FAILURE_STATUS_ABANDONED  # nothing of the old URL can be retried any more
    events = await downloads.start(task.id)
    assert events[-1].status == pb.TASK_STATUS_COMPLETED
    assert is_monotonic(events)
