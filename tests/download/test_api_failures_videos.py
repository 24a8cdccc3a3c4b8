"""Failure and video RPCs over a real server and database: records, filters, abandon rules, input rules."""

from __future__ import annotations

from typing import Any, cast

import grpc

from download_server.domain.models import FailureStatus
from mediadl.download.v1 import download_pb2 as pb
from tests.download.api import DownloadApi, new_id, rpc_failure

ALICE = "alice-0002"


def failure_request(task_id: str, **fields: Any) -> pb.CreateFailureRequest:
    values: dict[str, Any] = {
        "task_id": task_id,
        "segment_index": 4,
        "segment_url": "https://cdn.example.com/seg4.ts",
        "error_type": "HTTP_ERROR",
        "error_message": "503 Service Unavailable",
        "http_status": 503,
    }
    values.update(fields)
    return pb.CreateFailureRequest(**values)


async def test_create_get_and_list_failures(api: DownloadApi) -> None:
    task = await api.create_task(ALICE)
    other = await api.create_task(ALICE)
    md = api.auth(ALICE)
    whole = (
        await api.stub.CreateFailure(failure_request(task.id, segment_index=-1, http_status=0), metadata=md)
    ).failure
    seg = (await api.stub.CreateFailure(failure_request(task.id), metadata=md)).failure
    elsewhere = (await api.stub.CreateFailure(failure_request(other.id), metadata=md)).failure
    assert (whole.status, whole.segment_index, whole.http_status, whole.attempts) == (
        pb.FAILURE_STATUS_PENDING,
        -1,
        0,
        0,
    )
    assert (await api.stub.GetFailure(pb.GetFailureRequest(failure_id=seg.id), metadata=md)).failure == seg

    of_task = await api.stub.ListTaskFailures(pb.ListTaskFailuresRequest(task_id=task.id), metadata=md)
    assert [f.id for f in of_task.failures] == [seg.id, whole.id] and of_task.total_size == 2  # newest first
    everything = await api.stub.ListFailures(pb.ListFailuresRequest(), metadata=md)
    assert {f.id for f in everything.failures} == {whole.id, seg.id, elsewhere.id}
    filtered = await api.stub.ListFailures(pb.ListFailuresRequest(task_id=other.id), metadata=md)
    assert [f.id for f in filtered.failures] == [elsewhere.id]

    stored = await api.store.get_failure(seg.id)
    stored.status = FailureStatus.RESOLVED
    await api.store.save_failure(stored)
    open_only = await api.stub.ListFailures(
        pb.ListFailuresRequest(statuses=[pb.FAILURE_STATUS_PENDING, pb.FAILURE_STATUS_RETRYING]), metadata=md
    )
    assert {f.id for f in open_only.failures} == {whole.id, elsewhere.id} and open_only.total_size == 2
    resolved = await api.stub.ListTaskFailures(
        pb.ListTaskFailuresRequest(task_id=task.id, statuses=[pb.FAILURE_STATUS_RESOLVED]), metadata=md
    )
    assert [f.id for f in resolved.failures] == [seg.id]


async def test_abandon_closes_open_records_only(api: DownloadApi) -> None:
    task = await api.create_task(ALICE)
    other = await api.create_task(ALICE)
    md = api.auth(ALICE)
    failure = (await api.stub.CreateFailure(failure_request(task.id), metadata=md)).failure

    wrong_task = await rpc_failure(
        api.stub.AbandonFailure(pb.AbandonFailureRequest(failure_id=failure.id, task_id=other.id), metadata=md)
    )
    missing = await rpc_failure(api.stub.GetFailure(pb.GetFailureRequest(failure_id=new_id()), metadata=md))
    assert wrong_task.code == missing.code == grpc.StatusCode.NOT_FOUND
    assert wrong_task.message == f"failure {failure.id} not found"
    assert (await api.store.get_failure(failure.id)).status is FailureStatus.PENDING

    abandoned = (
        await api.stub.AbandonFailure(pb.AbandonFailureRequest(failure_id=failure.id, task_id=task.id), metadata=md)
    ).failure
    assert abandoned.status == pb.FAILURE_STATUS_ABANDONED
    assert abandoned.update_time.ToDatetime() >= failure.update_time.ToDatetime()
    again = await rpc_failure(api.stub.AbandonFailure(pb.AbandonFailureRequest(failure_id=failure.id), metadata=md))
    assert again.code == grpc.StatusCode.FAILED_PRECONDITION

    resolved = (await api.stub.CreateFailure(failure_request(task.id), metadata=md)).failure
    stored = await api.store.get_failure(resolved.id)
    stored.status = FailureStatus.RESOLVED
    await api.store.save_failure(stored)
    closed = await rpc_failure(api.stub.AbandonFailure(pb.AbandonFailureRequest(failure_id=resolved.id), metadata=md))
    assert closed.code == grpc.StatusCode.FAILED_PRECONDITION
    assert (await api.store.get_failure(resolved.id)).status is FailureStatus.RESOLVED


async def test_failure_input_rules(api: DownloadApi) -> None:
    task = await api.create_task(ALICE)
    md = api.auth(ALICE)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"segment_index": -2}, "segment_index"),
        ({"error_type": ""}, "error_type"),
        ({"error_type": "E" * 65}, "error_type"),
        ({"error_message": "m" * 4097}, "error_message"),
        ({"http_status": 99}, "http_status"),
        ({"http_status": 600}, "http_status"),
        ({"http_status": -1}, "http_status"),
        ({"task_id": "nope"}, "task_id"),
        ({"task_id": ""}, "task_id"),
    ]
    wrong = []
    for fields, field in cases:
        refused = await rpc_failure(
            api.stub.CreateFailure(failure_request(**{"task_id": task.id, **fields}), metadata=md)
        )
        if refused.code != grpc.StatusCode.INVALID_ARGUMENT or field not in refused.violations:
            wrong.append((fields, refused))
    assert wrong == []
    boundary = failure_request(task.id, error_type="E" * 64, error_message="m" * 4096, http_status=599)
    assert (await api.stub.CreateFailure(boundary, metadata=md)).failure.http_status == 599
    for request in (
        api.stub.ListFailures(pb.ListFailuresRequest(statuses=[pb.FAILURE_STATUS_UNSPECIFIED]), metadata=md),
        api.stub.ListTaskFailures(pb.ListTaskFailuresRequest(task_id=task.id, statuses=[cast(Any, 42)]), metadata=md),
    ):
        refused = await rpc_failure(request)
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT and "statuses" in refused.violations
    assert (await api.stub.ListFailures(pb.ListFailuresRequest(), metadata=md)).total_size == 1


def video_request(task_id: str, **fields: Any) -> pb.CreateVideoRequest:
    values: dict[str, Any] = {
        "task_id": task_id,
        "file_path": f"hls/{task_id}/index.m3u8",
        "file_size": 123_456_789_012,
        "duration_seconds": 3600.5,
        "format": "hls",
    }
    values.update(fields)
    return pb.CreateVideoRequest(**values)


async def test_videos(api: DownloadApi) -> None:
    task = await api.create_task(ALICE)
    stored = await api.store.get_task(task.id)
    stored.segments_done = 7
    await api.store.save_task(stored)
    md = api.auth(ALICE)
    video = (await api.stub.CreateVideo(video_request(task.id), metadata=md)).video
    assert (video.task_id, video.video_id, video.segment_count, video.format) == (task.id, task.video_id, 7, "hls")
    assert video.file_size == 123_456_789_012
    assert (await api.stub.GetVideo(pb.GetVideoRequest(video_id=task.video_id), metadata=md)).video == video
    listed = await api.stub.ListTaskVideos(pb.ListTaskVideosRequest(task_id=task.id), metadata=md)
    assert list(listed.videos) == [video] and listed.total_size == 1 and listed.next_page_token == ""

    replaced = (await api.stub.CreateVideo(video_request(task.id, format="mp4", file_size=5), metadata=md)).video
    assert (replaced.id, replaced.format, replaced.file_size) == (video.id, "mp4", 5)  # one record per task
    assert (await api.stub.ListTaskVideos(pb.ListTaskVideosRequest(task_id=task.id), metadata=md)).total_size == 1

    missing = await rpc_failure(api.stub.GetVideo(pb.GetVideoRequest(video_id=new_id()), metadata=md))
    assert missing.code == grpc.StatusCode.NOT_FOUND


async def test_video_input_rules(api: DownloadApi) -> None:
    task = await api.create_task(ALICE)
    md = api.auth(ALICE)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"format": "avi"}, "format"),
        ({"format": ""}, "format"),
        ({"format": "HLS"}, "format"),
        ({"file_size": -1}, "file_size"),
        ({"duration_seconds": -0.5}, "duration_seconds"),
        ({"duration_seconds": float("nan")}, "duration_seconds"),
        ({"duration_seconds": float("inf")}, "duration_seconds"),
        ({"file_path": ""}, "file_path"),
        ({"file_path": "p" * 1025}, "file_path"),
        ({"task_id": "123"}, "task_id"),
    ]
    wrong = []
    for fields, field in cases:
        refused = await rpc_failure(api.stub.CreateVideo(video_request(**{"task_id": task.id, **fields}), metadata=md))
        if refused.code != grpc.StatusCode.INVALID_ARGUMENT or field not in refused.violations:
            wrong.append((fields, refused))
    assert wrong == []
    bad_id = await rpc_failure(api.stub.GetVideo(pb.GetVideoRequest(video_id="v-1"), metadata=md))
    assert bad_id.code == grpc.StatusCode.INVALID_ARGUMENT and "video_id" in bad_id.violations
    longest = f"hls/{task.id}/" + "p" * (1024 - len(f"hls/{task.id}/"))
    edge = (await api.stub.CreateVideo(video_request(task.id, file_path=longest, file_size=0), metadata=md)).video
    assert (len(edge.file_path), edge.file_size) == (1024, 0)
