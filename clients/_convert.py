"""Protobuf messages to the client's dataclasses and back: the only module that reads message fields."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from clients.models import (
    Failure,
    FailureStatus,
    OutputFormat,
    Page,
    ResourceType,
    Task,
    TaskEvent,
    TaskStatus,
    User,
    Video,
)
from mediadl.auth.v1 import auth_pb2
from mediadl.download.v1 import download_pb2 as pb

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


def _time(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    return getattr(message, field).ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]


def _enum(value: int, proto_enum: Any, prefix: str, cls: type[E]) -> E:
    try:
        name = str(proto_enum.Name(value)).removeprefix(prefix)
        return cls(name)
    except ValueError:
        # A newer server may send a value this client does not know yet; it must not crash the caller.
        return cls("UNSPECIFIED")


def _to_proto_enum(value: StrEnum, proto_enum: Any, prefix: str) -> Any:
    # Any: the generated stubs type enum fields with their own wrapper classes, not int.
    return proto_enum.Value(prefix + value.value)


def task_status(value: int) -> TaskStatus:
    return _enum(value, pb.TaskStatus, "TASK_STATUS_", TaskStatus)


def task_status_to_proto(value: TaskStatus) -> Any:
    return _to_proto_enum(value, pb.TaskStatus, "TASK_STATUS_")


def resource_type_to_proto(value: ResourceType) -> Any:
    return _to_proto_enum(value, pb.ResourceType, "RESOURCE_TYPE_")


def output_format_to_proto(value: OutputFormat) -> Any:
    return _to_proto_enum(value, pb.OutputFormat, "OUTPUT_FORMAT_")


def failure_status_to_proto(value: FailureStatus) -> Any:
    return _to_proto_enum(value, pb.FailureStatus, "FAILURE_STATUS_")


def user(message: auth_pb2.User) -> User:
    return User(
        id=message.id,
        email=message.email,
        username=message.username,
        full_name=message.full_name,
        bio=message.bio,
        avatar_url=message.avatar_url,
        is_active=message.is_active,
        is_superuser=message.is_superuser,
        create_time=_time(message, "create_time"),
        update_time=_time(message, "update_time"),
    )


def task(message: pb.Task) -> Task:
    return Task(
        id=message.id,
        user_id=message.user_id,
        video_id=message.video_id,
        liveroom_id=message.liveroom_id,
        liveroom_title=message.liveroom_title,
        liveroom_url=message.liveroom_url,
        resource_url=message.resource_url,
        resource_type=_enum(message.resource_type, pb.ResourceType, "RESOURCE_TYPE_", ResourceType),
        status=task_status(message.status),
        progress=message.progress,
        bytes_downloaded=message.bytes_downloaded,
        bytes_total=message.bytes_total,
        segments_total=message.segments_total,
        segments_done=message.segments_done,
        segments_failed=message.segments_failed,
        retry_count=message.retry_count,
        last_error=message.last_error,
        create_time=_time(message, "create_time"),
        update_time=_time(message, "update_time"),
        complete_time=_time(message, "complete_time"),
        output_format=_enum(message.output_format, pb.OutputFormat, "OUTPUT_FORMAT_", OutputFormat),
        max_duration_seconds=message.max_duration_seconds,
    )


def task_event(message: pb.TaskEvent) -> TaskEvent:
    return TaskEvent(
        task_id=message.task_id,
        status=task_status(message.status),
        progress=message.progress,
        bytes_downloaded=message.bytes_downloaded,
        bytes_total=message.bytes_total,
        segments_done=message.segments_done,
        segments_failed=message.segments_failed,
        segments_total=message.segments_total,
        speed_bytes_per_second=message.speed_bytes_per_second,
        eta_seconds=message.eta_seconds,
        message=message.message,
        event_time=_time(message, "event_time"),
    )


def failure(message: pb.Failure) -> Failure:
    return Failure(
        id=message.id,
        task_id=message.task_id,
        segment_index=message.segment_index,
        segment_url=message.segment_url,
        error_type=message.error_type,
        error_message=message.error_message,
        http_status=message.http_status,
        attempts=message.attempts,
        status=_enum(message.status, pb.FailureStatus, "FAILURE_STATUS_", FailureStatus),
        create_time=_time(message, "create_time"),
        update_time=_time(message, "update_time"),
    )


def video(message: pb.Video) -> Video:
    return Video(
        id=message.id,
        task_id=message.task_id,
        video_id=message.video_id,
        file_path=message.file_path,
        file_size=message.file_size,
        duration_seconds=message.duration_seconds,
        format=message.format,
        segment_count=message.segment_count,
        sha256=message.sha256,
        create_time=_time(message, "create_time"),
        thumbnail_path=message.thumbnail_path,
    )


def page(items: Iterable[Any], convert: Callable[[Any], T], next_page_token: str, total_size: int) -> Page[T]:
    return Page(items=tuple(convert(item) for item in items), next_page_token=next_page_token, total_size=total_size)
