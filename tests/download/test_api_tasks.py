"""Task RPCs over a real server and database: create/get, input rules, state changes, updates and deletion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from download_server.domain.models import Task, TaskStatus
from download_server.engine.files.layout import Storage
from mediadl.download.v1 import download_pb2 as pb
from tests.download.api import (
    HLS_URL,
    ROOM_URL,
    DownloadApi,
    download_settings,
    new_id,
    rpc_failure,
    running_download_server,
)
from tests.download.helpers import make_failure, make_segment, make_video

ALICE = "alice-0001"


async def test_create_then_get(api: DownloadApi) -> None:
    video_id = new_id()
    created = await api.create_task(
        ALICE, video_id=video_id.upper(), liveroom_id="r" * 20, liveroom_title="t" * 255, liveroom_url=""
    )
    assert created.user_id == ALICE
    assert created.video_id == video_id  # stored in canonical form
    assert created.status == pb.TASK_STATUS_PENDING
    assert created.resource_type == pb.RESOURCE_TYPE_HLS
    assert (created.progress, created.bytes_total, created.segments_total, created.retry_count) == (0, 0, 0, 0)
    assert created.HasField("create_time") and not created.HasField("complete_time")
    fetched = await api.stub.GetTask(pb.GetTaskRequest(task_id=created.id), metadata=api.auth(ALICE))
    assert fetched.task == created
    stored = await api.store.get_task(created.id)
    assert (stored.liveroom_id, stored.liveroom_url, stored.resource_url) == ("r" * 20, "", HLS_URL)


CREATE_REFUSALS: list[tuple[dict[str, object], str]] = [
    ({"video_id": ""}, "video_id"),
    ({"video_id": "not-a-uuid"}, "video_id"),
    ({"video_id": "0" * 32}, "video_id"),
    ({"liveroom_id": ""}, "liveroom_id"),
    ({"liveroom_id": "   "}, "liveroom_id"),
    ({"liveroom_id": "r" * 21}, "liveroom_id"),
    ({"liveroom_title": "t" * 256}, "liveroom_title"),
    ({"liveroom_url": "ftp://live.example.com/"}, "liveroom_url"),
    ({"liveroom_url": "http://127.0.0.1/room"}, "liveroom_url"),
    ({"resource_url": ""}, "resource_url"),
    ({"resource_url": "https://cdn.example.com/" + "a" * 2030}, "resource_url"),
    ({"resource_url": "file:///etc/passwd"}, "resource_url"),
    ({"resource_url": "javascript:alert(1)"}, "resource_url"),
    ({"resource_url": "https://user:pw@cdn.example.com/a.m3u8"}, "resource_url"),
    ({"resource_url": "http://localhost/a.m3u8"}, "resource_url"),
    ({"resource_url": "http://127.0.0.1/a.m3u8"}, "resource_url"),
    ({"resource_url": "http://2130706433/a.m3u8"}, "resource_url"),
    ({"resource_url": "http://0x7f.1/a.m3u8"}, "resource_url"),
    ({"resource_url": "http://0177.0.0.1/a.m3u8"}, "resource_url"),
    ({"resource_url": "http://[::1]/a.m3u8"}, "resource_url"),
    ({"resource_url": "http://[::ffff:127.0.0.1]/a.m3u8"}, "resource_url"),
    ({"resource_url": "http://169.254.169.254/latest/meta-data/"}, "resource_url"),
    ({"resource_url": "http://10.1.2.3/a.mp4"}, "resource_url"),
    ({"resource_url": "http://internal.example.com/a.mp4"}, "resource_url"),
    ({"resource_url": "http://rebind.example.com/a.mp4"}, "resource_url"),
    ({"resource_url": "http://does-not-resolve.example.com/a.mp4"}, "resource_url"),
    ({"resource_type": pb.RESOURCE_TYPE_UNSPECIFIED}, "resource_type"),
    ({"resource_type": 99}, "resource_type"),
]


async def test_create_refuses_bad_input_naming_the_field(api: DownloadApi) -> None:
    # One server per database for the whole table: each case is independent and reported by its fields.
    wrong = []
    for fields, field in CREATE_REFUSALS:
        refused = await rpc_failure(api.create_task(ALICE, **fields))
        if refused.code != grpc.StatusCode.INVALID_ARGUMENT or field not in refused.violations:
            wrong.append((fields, refused))
    assert wrong == []
    listed = await api.stub.ListTasks(pb.ListTasksRequest(), metadata=api.auth(ALICE))
    assert listed.total_size == 0


async def test_create_reports_every_violation_at_once(api: DownloadApi) -> None:
    refused = await rpc_failure(
        api.create_task(ALICE, video_id="x", liveroom_id="", resource_url="ftp://a", resource_type=0)
    )
    assert set(refused.violations) == {"video_id", "liveroom_id", "resource_url", "resource_type"}


async def test_private_networks_allowed_when_configured(tmp_path: Path, database_url: str) -> None:
    settings = download_settings(database_url, tmp_path / "s", DOWNLOAD_ALLOW_PRIVATE_NETWORKS="true")
    async with running_download_server(settings) as api:
        task = await api.create_task(ALICE, resource_url="http://127.0.0.1:8080/live/index.m3u8")
        assert task.resource_url == "http://127.0.0.1:8080/live/index.m3u8"
        refused = await rpc_failure(api.create_task(ALICE, resource_url="ftp://127.0.0.1/x"))
        assert "resource_url" in refused.violations


async def _task_in(api: DownloadApi, status: TaskStatus) -> Task:
    created = await api.create_task(ALICE)
    task = await api.store.get_task(created.id)
    task.status = status
    await api.store.save_task(task)
    return task


ACTIONS = {
    "pause": ("PauseTask", pb.PauseTaskRequest, {TaskStatus.PROCESSING: pb.TASK_STATUS_PAUSED}),
    "resume": ("ResumeTask", pb.ResumeTaskRequest, {TaskStatus.PAUSED: pb.TASK_STATUS_PROCESSING}),
    "cancel": (
        "CancelTask",
        pb.CancelTaskRequest,
        {s: pb.TASK_STATUS_CANCELLED for s in (TaskStatus.PENDING, TaskStatus.PROCESSING, TaskStatus.PAUSED)},
    ),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
async def test_state_changes_follow_the_transition_table(api: DownloadApi, action: str) -> None:
    method, request_type, allowed = ACTIONS[action]
    for status in TaskStatus:
        task = await _task_in(api, status)
        call = getattr(api.stub, method)(request_type(task_id=task.id), metadata=api.auth(ALICE))
        if status in allowed:
            changed = (await call).task
            assert changed.status == allowed[status], (action, status)
            assert (await api.store.get_task(task.id)).status.value == pb.TaskStatus.Name(changed.status)[12:]
            assert changed.HasField("complete_time") == (action == "cancel")
        else:
            refused = await rpc_failure(call)
            assert (refused.code, refused.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "TASK_STATE"), status
            assert status.value in refused.message
            assert (await api.store.get_task(task.id)).status is status


async def test_update_with_a_mask_changes_only_the_named_fields(api: DownloadApi) -> None:
    task = await api.create_task(ALICE)
    request = pb.UpdateTaskRequest(
        task_id=task.id,
        liveroom_title="New title",
        liveroom_url="https://live.example.com/other",
        resource_url="https://cdn.example.com/other.m3u8",
        update_mask=FieldMask(paths=["liveroom_title"]),
    )
    updated = (await api.stub.UpdateTask(request, metadata=api.auth(ALICE))).task
    assert (updated.liveroom_title, updated.liveroom_url, updated.resource_url) == ("New title", ROOM_URL, HLS_URL)
    assert updated.update_time.ToDatetime() > task.update_time.ToDatetime()

    cleared = pb.UpdateTaskRequest(task_id=task.id, update_mask=FieldMask(paths=["liveroom_title", "liveroom_url"]))
    updated = (await api.stub.UpdateTask(cleared, metadata=api.auth(ALICE))).task
    assert (updated.liveroom_title, updated.liveroom_url) == ("", "")


async def test_update_with_an_empty_mask_applies_the_fields_that_are_set(api: DownloadApi) -> None:
    task = await api.create_task(ALICE)
    request = pb.UpdateTaskRequest(task_id=task.id, liveroom_url="https://live.example.com/moved")
    updated = (await api.stub.UpdateTask(request, metadata=api.auth(ALICE))).task
    assert (updated.liveroom_title, updated.liveroom_url) == (task.liveroom_title, "https://live.example.com/moved")
    nothing = await rpc_failure(api.stub.UpdateTask(pb.UpdateTaskRequest(task_id=task.id), metadata=api.auth(ALICE)))
    assert "update_mask" in nothing.violations


UPDATE_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"update_mask": FieldMask(paths=["status"])}, "update_mask"),
    ({"update_mask": FieldMask(paths=["liveroom_title", "user_id"])}, "update_mask"),
    ({"liveroom_title": "t" * 256}, "liveroom_title"),
    ({"liveroom_url": "gopher://live.example.com/"}, "liveroom_url"),
    ({"resource_url": "http://[::1]:8080/x.m3u8"}, "resource_url"),
    ({"resource_url": "http://internal.example.com/x.m3u8"}, "resource_url"),
    ({"resource_url": "", "update_mask": FieldMask(paths=["resource_url"])}, "resource_url"),
]


async def test_update_refuses_bad_input(api: DownloadApi) -> None:
    task = await api.create_task(ALICE)
    wrong = []
    for request_fields, field in UPDATE_REFUSALS:
        refused = await rpc_failure(
            api.stub.UpdateTask(pb.UpdateTaskRequest(task_id=task.id, **request_fields), metadata=api.auth(ALICE))
        )
        if refused.code != grpc.StatusCode.INVALID_ARGUMENT or field not in refused.violations:
            wrong.append((request_fields, refused))
    assert wrong == []
    after = (await api.stub.GetTask(pb.GetTaskRequest(task_id=task.id), metadata=api.auth(ALICE))).task
    assert after == task


@pytest.mark.parametrize("status", list(TaskStatus))
async def test_resource_url_changes_only_while_nothing_runs_or_is_done(api: DownloadApi, status: TaskStatus) -> None:
    task = await _task_in(api, status)
    task.segments_total, task.segments_done, task.bytes_downloaded, task.retry_count = 4, 2, 500, 1
    await api.store.save_task(task)
    await api.store.add_segments(task.id, [make_segment(task.id, i) for i in range(4)])
    new_url = "https://cdn.example.com/replacement.m3u8"
    call = api.stub.UpdateTask(
        pb.UpdateTaskRequest(task_id=task.id, resource_url=new_url, update_mask=FieldMask(paths=["resource_url"])),
        metadata=api.auth(ALICE),
    )
    if status in (TaskStatus.PENDING, TaskStatus.FAILED, TaskStatus.CANCELLED):
        updated = (await call).task
        assert updated.resource_url == new_url
        assert updated.status == pb.TASK_STATUS_PENDING
        assert (updated.segments_total, updated.segments_done, updated.bytes_downloaded, updated.retry_count) == (
            0,
            0,
            0,
            0,
        )
        assert await api.store.list_segments(task.id) == []
    else:
        refused = await rpc_failure(call)
        assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
        assert (await api.store.get_task(task.id)).resource_url == HLS_URL
        assert len(await api.store.list_segments(task.id)) == 4


async def test_setting_the_same_resource_url_is_not_a_change(api: DownloadApi) -> None:
    task = await _task_in(api, TaskStatus.PROCESSING)
    await api.store.add_segments(task.id, [make_segment(task.id, 0)])
    request = pb.UpdateTaskRequest(task_id=task.id, resource_url=HLS_URL, liveroom_title="renamed while running")
    updated = (await api.stub.UpdateTask(request, metadata=api.auth(ALICE))).task
    assert (updated.status, updated.liveroom_title) == (pb.TASK_STATUS_PROCESSING, "renamed while running")
    assert len(await api.store.list_segments(task.id)) == 1


async def test_delete_takes_records_and_optionally_files(api: DownloadApi) -> None:
    storage = Storage(api.settings.storage_dir)
    keep_files = await api.create_task(ALICE)
    drop_files = await api.create_task(
        ALICE, resource_type=pb.RESOURCE_TYPE_MP4, resource_url="https://cdn.example.com/a.mp4"
    )
    outside = api.settings.storage_dir.parent / "outside.mp4"
    outside.write_bytes(b"not ours")
    paths: dict[str, list[Path]] = {}
    for created in (keep_files, drop_files):
        task = await api.store.get_task(created.id)
        segment = storage.segment_path(task.id, 0, "ts")
        segment.parent.mkdir(parents=True)
        segment.write_bytes(b"ts")
        mp4 = storage.mp4_path(task)
        mp4.parent.mkdir(parents=True, exist_ok=True)
        mp4.write_bytes(b"mp4")
        paths[task.id] = [segment, mp4]
        await api.store.add_failure(make_failure(task.id))
    # A video record pointing outside the storage directory must never lead to deleting that file.
    await api.store.save_video(make_video(await api.store.get_task(drop_files.id), file_path=str(outside)))

    for created, delete_files in ((keep_files, False), (drop_files, True)):
        request = pb.DeleteTaskRequest(task_id=created.id, delete_files=delete_files)
        assert await api.stub.DeleteTask(request, metadata=api.auth(ALICE)) == pb.DeleteTaskResponse()
        gone = await rpc_failure(api.stub.GetTask(pb.GetTaskRequest(task_id=created.id), metadata=api.auth(ALICE)))
        assert gone.code == grpc.StatusCode.NOT_FOUND
        assert await api.store.task_failures(created.id) == []
    assert all(path.exists() for path in paths[keep_files.id])
    assert not any(path.exists() for path in paths[drop_files.id])
    assert not storage.hls_dir(drop_files.id).exists()
    assert outside.read_bytes() == b"not ours"
    again = await rpc_failure(
        api.stub.DeleteTask(pb.DeleteTaskRequest(task_id=drop_files.id), metadata=api.auth(ALICE))
    )
    assert again.code == grpc.StatusCode.NOT_FOUND


async def test_delete_removes_only_the_task_s_own_video_file(api: DownloadApi) -> None:
    """An older record naming a file that is not the task's own (here a custom name) never leads to deleting it."""
    created = await api.create_task(
        ALICE, resource_type=pb.RESOURCE_TYPE_MP4, resource_url="https://cdn.example.com/a.mp4"
    )
    task = await api.store.get_task(created.id)
    custom = api.settings.storage_dir / "mp4" / "custom-name.mp4"
    custom.parent.mkdir(parents=True)
    custom.write_bytes(b"x")
    await api.store.save_video(make_video(task, file_path="mp4/custom-name.mp4"))
    await api.stub.DeleteTask(pb.DeleteTaskRequest(task_id=task.id, delete_files=True), metadata=api.auth(ALICE))
    assert custom.read_bytes() == b"x"
