"""User B holding user A's ids: every id-taking RPC answers NOT_FOUND, shaped like a missing id, changing nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from download_server.domain.models import TaskStatus
from mediadl.download.v1 import download_pb2 as pb
from tests.download.api import DownloadApi, new_id, rpc_failure
from tests.download.helpers import make_segment

ALICE, BOB = "alice-0003", "bob-0003"

# RPC name -> request built from (task id, failure id, video id); each names one of Alice's objects.
Build = Callable[[str, str, str], Any]
ID_RPCS: dict[str, Build] = {
    "GetTask": lambda t, f, v: pb.GetTaskRequest(task_id=t),
    "UpdateTask": lambda t, f, v: pb.UpdateTaskRequest(
        task_id=t, liveroom_title="hijacked", update_mask=FieldMask(paths=["liveroom_title"])
    ),
    "DeleteTask": lambda t, f, v: pb.DeleteTaskRequest(task_id=t, delete_files=True),
    "PauseTask": lambda t, f, v: pb.PauseTaskRequest(task_id=t),
    "ResumeTask": lambda t, f, v: pb.ResumeTaskRequest(task_id=t),
    "CancelTask": lambda t, f, v: pb.CancelTaskRequest(task_id=t),
    "CreateFailure": lambda t, f, v: pb.CreateFailureRequest(task_id=t, segment_index=0, error_type="X"),
    "ListTaskFailures": lambda t, f, v: pb.ListTaskFailuresRequest(task_id=t),
    "ListFailures": lambda t, f, v: pb.ListFailuresRequest(task_id=t),
    "GetFailure": lambda t, f, v: pb.GetFailureRequest(failure_id=f),
    "AbandonFailure": lambda t, f, v: pb.AbandonFailureRequest(failure_id=f),
    "CreateVideo": lambda t, f, v: pb.CreateVideoRequest(task_id=t, file_path="x.mp4", format="mp4"),
    "ListTaskVideos": lambda t, f, v: pb.ListTaskVideosRequest(task_id=t),
    "GetVideo": lambda t, f, v: pb.GetVideoRequest(video_id=v),
}


async def _snapshot(api: DownloadApi, task_id: str, failure_id: str, video_id: str) -> tuple[Any, ...]:
    return (
        await api.store.get_task(task_id),
        await api.store.task_failures(task_id),
        await api.transactions.run(lambda uow: uow.videos.newest(video_id, ALICE)),
        await api.store.list_segments(task_id),
    )


async def test_other_users_ids_are_not_found_and_nothing_changes(api: DownloadApi) -> None:
    a = api.auth(ALICE)
    task = await api.create_task(ALICE)
    stored = await api.store.get_task(task.id)
    stored.status = TaskStatus.PROCESSING  # a state every action could act on, were it allowed
    await api.store.save_task(stored)
    await api.store.add_segments(task.id, [make_segment(task.id, 0)])
    failure = (
        await api.stub.CreateFailure(pb.CreateFailureRequest(task_id=task.id, error_type="HTTP_ERROR"), metadata=a)
    ).failure
    await api.stub.CreateVideo(
        pb.CreateVideoRequest(task_id=task.id, file_path=f"hls/{task.id}/v.mp4", format="mp4"), metadata=a
    )
    before = await _snapshot(api, task.id, failure.id, task.video_id)

    b = api.auth(BOB)
    await api.create_task(BOB)  # Bob is a real user with data of his own
    mismatched = []
    for name, build in ID_RPCS.items():
        foreign = await rpc_failure(getattr(api.stub, name)(build(task.id, failure.id, task.video_id), metadata=b))
        ghost_ids = (new_id(), new_id(), new_id())
        missing = await rpc_failure(getattr(api.stub, name)(build(*ghost_ids), metadata=b))
        # Same code, reason and message shape: only the id in the message differs.
        anonymised = foreign.message
        for real, ghost in zip((task.id, failure.id, task.video_id), ghost_ids, strict=True):
            anonymised = anonymised.replace(real, ghost)
        if (foreign.code, foreign.reason, anonymised) != (grpc.StatusCode.NOT_FOUND, missing.reason, missing.message):
            mismatched.append((name, foreign, missing))
    assert mismatched == []
    assert await _snapshot(api, task.id, failure.id, task.video_id) == before

    # Bob's own lists never show Alice's rows either.
    assert (await api.stub.ListFailures(pb.ListFailuresRequest(), metadata=b)).total_size == 0
    bobs = await api.stub.ListTasks(pb.ListTasksRequest(), metadata=b)
    assert bobs.total_size == 1 and bobs.tasks[0].user_id == BOB


ID_FIELD = {"GetFailure": "failure_id", "AbandonFailure": "failure_id", "GetVideo": "video_id"}


async def test_malformed_ids_are_invalid_arguments_naming_the_field(api: DownloadApi) -> None:
    b = api.auth(BOB)
    wrong = []
    for name, build in ID_RPCS.items():
        field = ID_FIELD.get(name, "task_id")
        for bad in ("nope", "../../etc/passwd", "1' OR '1'='1", new_id() + "0", "x" * 10_000):
            refused = await rpc_failure(getattr(api.stub, name)(build(bad, bad, bad), metadata=b))
            if refused.code != grpc.StatusCode.INVALID_ARGUMENT or field not in refused.violations:
                wrong.append((name, bad[:40], refused))
    assert wrong == []
    # An empty id where one is required is INVALID_ARGUMENT too (ListFailures' task_id is optional).
    for name, build in ID_RPCS.items():
        if name == "ListFailures":
            continue
        refused = await rpc_failure(getattr(api.stub, name)(build("", "", ""), metadata=b))
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT, name
