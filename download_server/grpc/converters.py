"""Protobuf <-> domain conversions for DownloadService: the only code besides the servicer that sees messages."""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping
from typing import TypeVar

from download_server.domain.models import (
    Failure,
    FailureStatus,
    OutputFormat,
    ResourceType,
    Task,
    TaskEvent,
    TaskStatus,
    Video,
    VideoFileKind,
)
from download_server.services.failures import FailureListRequest, NewFailure
from download_server.services.tasks import UPDATABLE_FIELDS, NewTask, TaskChanges, TaskListRequest, expand_mask
from download_server.services.videos import NewVideo, VideoRead
from mediadl.download.v1 import download_pb2 as pb
from mediadl_common.errors import InvalidArgument
from mediadl_common.proto_time import timestamp

E = TypeVar("E", bound=enum.Enum)
EventResponse = TypeVar(
    "EventResponse", pb.StartTaskResponse, pb.RetryTaskResponse, pb.WatchTaskResponse, pb.WatchTasksResponse
)

# Domain <-> proto enums, written out: a value added on either side without a row here fails
# tests/download/test_converters.py. *_UNSPECIFIED (0) has no domain value: it means "not given".
TASK_STATUSES: dict[TaskStatus, pb.TaskStatus] = {
    TaskStatus.PENDING: pb.TASK_STATUS_PENDING,
    TaskStatus.PROCESSING: pb.TASK_STATUS_PROCESSING,
    TaskStatus.PAUSED: pb.TASK_STATUS_PAUSED,
    TaskStatus.COMPLETED: pb.TASK_STATUS_COMPLETED,
    TaskStatus.PARTIAL_COMPLETED: pb.TASK_STATUS_PARTIAL_COMPLETED,
    TaskStatus.FAILED: pb.TASK_STATUS_FAILED,
    TaskStatus.CANCELLED: pb.TASK_STATUS_CANCELLED,
}
FAILURE_STATUSES: dict[FailureStatus, pb.FailureStatus] = {
    FailureStatus.PENDING: pb.FAILURE_STATUS_PENDING,
    FailureStatus.RETRYING: pb.FAILURE_STATUS_RETRYING,
    FailureStatus.RESOLVED: pb.FAILURE_STATUS_RESOLVED,
    FailureStatus.ABANDONED: pb.FAILURE_STATUS_ABANDONED,
}
RESOURCE_TYPES: dict[ResourceType, pb.ResourceType] = {
    ResourceType.HLS: pb.RESOURCE_TYPE_HLS,
    ResourceType.MP4: pb.RESOURCE_TYPE_MP4,
    ResourceType.IMAGE: pb.RESOURCE_TYPE_IMAGE,
    ResourceType.FLV: pb.RESOURCE_TYPE_FLV,
    ResourceType.DASH: pb.RESOURCE_TYPE_DASH,
}

OUTPUT_FORMATS: dict[OutputFormat, pb.OutputFormat] = {
    OutputFormat.HLS: pb.OUTPUT_FORMAT_HLS,
    OutputFormat.MP4: pb.OUTPUT_FORMAT_MP4,
}

VIDEO_FILE_KINDS: dict[VideoFileKind, pb.VideoFileKind] = {
    VideoFileKind.MEDIA: pb.VIDEO_FILE_KIND_MEDIA,
    VideoFileKind.THUMBNAIL: pb.VIDEO_FILE_KIND_THUMBNAIL,
}


def _enum_from_proto(number: int, table: Mapping[E, int], field: str) -> E | None:
    """The domain value of a proto enum number; None for *_UNSPECIFIED; unknown numbers are refused."""
    if number == 0:
        return None
    for member, value in table.items():
        if value == number:
            return member
    raise InvalidArgument.field(field, f"unknown value {number}")


def _statuses(numbers: Iterable[int], table: Mapping[E, int], prefix: str, field: str) -> tuple[E, ...]:
    result: list[E] = []
    for number in numbers:
        status = _enum_from_proto(number, table, field)
        if status is None:
            raise InvalidArgument.field(field, f"{prefix}_UNSPECIFIED is not a status to filter by")
        result.append(status)
    return tuple(result)


def resource_type_from_proto(number: int) -> ResourceType | None:
    return _enum_from_proto(number, RESOURCE_TYPES, "resource_type")


def task_statuses_from_proto(numbers: Iterable[int]) -> tuple[TaskStatus, ...]:
    return _statuses(numbers, TASK_STATUSES, "TASK_STATUS", "statuses")


def failure_statuses_from_proto(numbers: Iterable[int]) -> tuple[FailureStatus, ...]:
    return _statuses(numbers, FAILURE_STATUSES, "FAILURE_STATUS", "statuses")


# Domain -> proto


def task_to_proto(task: Task) -> pb.Task:
    message = pb.Task(
        id=task.id,
        user_id=task.user_id,
        video_id=task.video_id,
        liveroom_id=task.liveroom_id,
        liveroom_title=task.liveroom_title,
        liveroom_url=task.liveroom_url,
        resource_url=task.resource_url,
        resource_type=RESOURCE_TYPES[task.resource_type],
        status=TASK_STATUSES[task.status],
        progress=task.progress,
        bytes_downloaded=task.bytes_downloaded,
        bytes_total=task.bytes_total,
        segments_total=task.segments_total,
        segments_done=task.segments_done,
        segments_failed=task.segments_failed,
        retry_count=task.retry_count,
        last_error=task.last_error,
        create_time=timestamp(task.create_time),
        update_time=timestamp(task.update_time),
        output_format=OUTPUT_FORMATS[task.output_format],
        max_duration_seconds=task.max_duration_seconds,
    )
    if task.complete_time is not None:
        message.complete_time.CopyFrom(timestamp(task.complete_time))
    return message


@functools.lru_cache(maxsize=4096)
def event_response(kind: type[EventResponse], event: TaskEvent) -> EventResponse:
    """`kind(event=...)` for a stream, made once per event and response type and shared by every stream.

    The broker hands the same TaskEvent object to every watcher of its task: with 1,000 watchers, converting
    it once instead of 1,000 times took a fifth of the event loop's per-message work (bench/fanout.py). The
    shared message is never changed after this (grpc only serializes it); events are frozen, so equal events
    may share one too."""
    return kind(event=event_to_proto(event))


def event_to_proto(event: TaskEvent) -> pb.TaskEvent:
    return pb.TaskEvent(
        task_id=event.task_id,
        status=TASK_STATUSES[event.status],
        progress=event.progress,
        bytes_downloaded=event.bytes_downloaded,
        bytes_total=event.bytes_total,
        segments_done=event.segments_done,
        segments_failed=event.segments_failed,
        segments_total=event.segments_total,
        speed_bytes_per_second=event.speed_bytes_per_second,
        eta_seconds=event.eta_seconds,
        message=event.message,
        event_time=timestamp(event.event_time),
    )


def failure_to_proto(failure: Failure) -> pb.Failure:
    return pb.Failure(
        id=failure.id,
        task_id=failure.task_id,
        segment_index=failure.segment_index,
        segment_url=failure.segment_url,
        error_type=failure.error_type,
        error_message=failure.error_message,
        http_status=failure.http_status,
        attempts=failure.attempts,
        status=FAILURE_STATUSES[failure.status],
        create_time=timestamp(failure.create_time),
        update_time=timestamp(failure.update_time),
    )


def video_to_proto(video: Video) -> pb.Video:
    return pb.Video(
        id=video.id,
        task_id=video.task_id,
        video_id=video.video_id,
        file_path=video.file_path,
        file_size=video.file_size,
        duration_seconds=video.duration_seconds,
        format=video.format.value,
        segment_count=video.segment_count,
        sha256=video.sha256,
        create_time=timestamp(video.create_time),
        thumbnail_path=video.thumbnail_path,
    )


# Requests -> use-case inputs


def new_task(request: pb.CreateTaskRequest) -> NewTask:
    return NewTask(
        video_id=request.video_id,
        liveroom_id=request.liveroom_id,
        liveroom_title=request.liveroom_title,
        liveroom_url=request.liveroom_url,
        resource_url=request.resource_url,
        resource_type=resource_type_from_proto(request.resource_type),
        output_format=_enum_from_proto(request.output_format, OUTPUT_FORMATS, "output_format"),
        max_duration_seconds=request.max_duration_seconds,
    )


def task_changes(request: pb.UpdateTaskRequest) -> TaskChanges:
    set_fields = [name for name in UPDATABLE_FIELDS if getattr(request, name)]
    return TaskChanges(
        task_id=request.task_id,
        paths=expand_mask(list(request.update_mask.paths), set_fields),
        liveroom_title=request.liveroom_title,
        liveroom_url=request.liveroom_url,
        resource_url=request.resource_url,
    )


def task_list_request(request: pb.ListTasksRequest) -> TaskListRequest:
    return TaskListRequest(
        page_size=request.page_size,
        page_token=request.page_token,
        statuses=task_statuses_from_proto(request.statuses),
        order_by=request.order_by,
    )


def failure_list_request(request: pb.ListFailuresRequest | pb.ListTaskFailuresRequest) -> FailureListRequest:
    return FailureListRequest(
        page_size=request.page_size,
        page_token=request.page_token,
        statuses=failure_statuses_from_proto(request.statuses),
        task_id=request.task_id,
    )


def new_failure(request: pb.CreateFailureRequest) -> NewFailure:
    return NewFailure(
        task_id=request.task_id,
        segment_index=request.segment_index,
        segment_url=request.segment_url,
        error_type=request.error_type,
        error_message=request.error_message,
        http_status=request.http_status,
    )


def new_video(request: pb.CreateVideoRequest) -> NewVideo:
    return NewVideo(
        task_id=request.task_id,
        file_path=request.file_path,
        file_size=request.file_size,
        duration_seconds=request.duration_seconds,
        format=request.format,
    )


def video_read(request: pb.ReadVideoRequest) -> VideoRead:
    kind = _enum_from_proto(request.kind, VIDEO_FILE_KINDS, "kind") or VideoFileKind.MEDIA
    return VideoRead(video_id=request.video_id, offset=request.offset, kind=kind, path=request.path)
