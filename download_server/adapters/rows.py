"""Rows <-> domain objects: which fields each table stores and how enums are written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from download_server.adapters.orm import FailureRow, SegmentRow, TaskRow, VideoRow
from download_server.domain.models import (
    Failure,
    FailureStatus,
    OutputFormat,
    ResourceType,
    Segment,
    SegmentStatus,
    Task,
    TaskStatus,
    Video,
    VideoFormat,
)

TASK_FIELDS = (
    "user_id video_id liveroom_id liveroom_title liveroom_url resource_url resource_type status progress "
    "bytes_downloaded bytes_total segments_total segments_done segments_failed retry_count last_error "
    "create_time update_time complete_time queued_time crash_count reclaims output_format max_duration_seconds live"
).split()
COUNTER_FIELDS = (
    "progress bytes_downloaded bytes_total segments_total segments_done segments_failed last_error update_time live"
).split()
_SEGMENT_FIELDS = (
    "uri duration byterange_offset byterange_length key_uri key_iv init_uri discontinuity status bytes attempts sha256"
).split()
_FAILURE_FIELDS = (
    "segment_index segment_url error_type error_message http_status attempts status create_time update_time"
).split()
_VIDEO_FIELDS = (
    "video_id file_path file_size duration_seconds format segment_count sha256 create_time thumbnail_path"
).split()


def _copy(source: object, target: object, fields: Sequence[str]) -> None:
    for name in fields:
        setattr(target, name, getattr(source, name))


def to_task(row: TaskRow) -> Task:
    values: dict[str, Any] = {name: getattr(row, name) for name in TASK_FIELDS}
    values["resource_type"] = ResourceType(row.resource_type)
    values["status"] = TaskStatus(row.status)
    values["output_format"] = OutputFormat(row.output_format)
    return Task(id=row.id, **values)


def write_task(row: TaskRow, task: Task, fields: Sequence[str] = TASK_FIELDS) -> None:
    _copy(task, row, fields)
    if "resource_type" in fields:
        row.resource_type = task.resource_type.value
    if "status" in fields:
        row.status = task.status.value
    if "output_format" in fields:
        row.output_format = task.output_format.value


def to_segment(row: SegmentRow) -> Segment:
    values: dict[str, Any] = {name: getattr(row, name) for name in _SEGMENT_FIELDS}
    values["status"] = SegmentStatus(row.status)
    return Segment(task_id=row.task_id, index=row.segment_index, **values)


def segment_values(task_id: str, segment: Segment) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(segment, name) for name in _SEGMENT_FIELDS}
    values.update(task_id=task_id, segment_index=segment.index, status=segment.status.value)
    return values


def to_failure(row: FailureRow) -> Failure:
    values: dict[str, Any] = {name: getattr(row, name) for name in _FAILURE_FIELDS}
    values["status"] = FailureStatus(row.status)
    return Failure(id=row.id, task_id=row.task_id, **values)


def write_failure(row: FailureRow, failure: Failure) -> None:
    _copy(failure, row, _FAILURE_FIELDS)
    row.status = failure.status.value


def to_video(row: VideoRow) -> Video:
    values: dict[str, Any] = {name: getattr(row, name) for name in _VIDEO_FIELDS}
    values["format"] = VideoFormat(row.format)
    return Video(id=row.id, task_id=row.task_id, **values)


def write_video(row: VideoRow, video: Video) -> None:
    _copy(video, row, _VIDEO_FIELDS)
    row.format = video.format.value
