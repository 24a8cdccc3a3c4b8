"""No control character or bidirectional override reaches a database: the same INVALID_ARGUMENT on SQLite
and PostgreSQL for every text field of the download service (issue 15, finding 4: a NUL in liveroom_id was
INTERNAL on PostgreSQL and stored on SQLite)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from mediadl.download.v1 import download_pb2 as pb
from tests.download.api import DownloadApi
from tests.support.status import rpc_failure

ALICE = "alice-0016"
BAD = ["\x00", "\x07", "\x1b[31m", "\x7f", "\x85", "\u202e", "\u2067"]


def _create(bad: str, field: str) -> pb.CreateTaskRequest:
    values: dict[str, Any] = {
        "video_id": "3f1e2a94-1c9a-4d4e-8a7e-3f5d1b2c4a6e",
        "liveroom_id": "room-1",
        "liveroom_title": "a title",
        "liveroom_url": "https://example.com/room",
        "resource_url": "https://cdn.example.com/a.m3u8",
        "resource_type": pb.RESOURCE_TYPE_HLS,
    }
    values[field] = values[field][:3] + bad + values[field][3:]
    return pb.CreateTaskRequest(**values)


Call = Callable[[DownloadApi, str, str], Awaitable[Any]]


async def _create_task(api: DownloadApi, field: str, bad: str) -> Any:
    return await api.stub.CreateTask(_create(bad, field), metadata=api.auth(ALICE))


async def _update_task(api: DownloadApi, field: str, bad: str) -> Any:
    task = await api.create_task(ALICE)
    value = {"liveroom_title": "t", "liveroom_url": "https://e.com/r", "resource_url": "https://e.com/a.m3u8"}[field]
    request = pb.UpdateTaskRequest(task_id=task.id, update_mask=FieldMask(paths=[field]))
    setattr(request, field, value[:3] + bad + value[3:])
    return await api.stub.UpdateTask(request, metadata=api.auth(ALICE))


async def _create_failure(api: DownloadApi, field: str, bad: str) -> Any:
    task = await api.create_task(ALICE)
    values: dict[str, Any] = {"segment_url": "https://e.com/s.ts", "error_type": "http", "error_message": "it broke"}
    values[field] = values[field][:3] + bad + values[field][3:]
    request = pb.CreateFailureRequest(task_id=task.id, segment_index=0, **values)
    return await api.stub.CreateFailure(request, metadata=api.auth(ALICE))


async def _create_video(api: DownloadApi, field: str, bad: str) -> Any:
    task = await api.create_task(ALICE)
    request = pb.CreateVideoRequest(task_id=task.id, file_path=f"hls/{task.id}/in{bad}dex.m3u8", format="hls")
    return await api.stub.CreateVideo(request, metadata=api.auth(ALICE))


CASES: list[tuple[Call, str]] = [
    *((_create_task, f) for f in ("liveroom_id", "liveroom_title", "liveroom_url", "resource_url")),
    *((_update_task, f) for f in ("liveroom_title", "liveroom_url", "resource_url")),
    *((_create_failure, f) for f in ("segment_url", "error_type", "error_message")),
    (_create_video, "file_path"),
]


@pytest.mark.parametrize(("call", "field"), CASES, ids=[f"{c.__name__[1:]}.{f}" for c, f in CASES])
async def test_control_characters_are_invalid_argument_on_every_database(
    api: DownloadApi, call: Call, field: str
) -> None:
    wrong = []
    for bad in BAD:
        refused = await rpc_failure(call(api, field, bad))
        if refused.code != grpc.StatusCode.INVALID_ARGUMENT or field not in refused.violations:
            wrong.append((repr(bad), refused.code))
    assert wrong == []


async def test_an_error_message_may_hold_newlines_and_tabs(api: DownloadApi) -> None:
    task = await api.create_task(ALICE)
    request = pb.CreateFailureRequest(task_id=task.id, segment_index=0, error_type="http", error_message="a\n\tb")
    failure = (await api.stub.CreateFailure(request, metadata=api.auth(ALICE))).failure
    assert failure.error_message == "a\n\tb"
