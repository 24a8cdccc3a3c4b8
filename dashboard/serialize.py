"""The client's dataclasses as JSON for the page: plain dicts, times as ISO-8601 strings, enums as their names."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from clients import Failure, Page, Task, TaskEvent, User, Video

Json = dict[str, Any]
T = TypeVar("T")


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def user_json(user: User) -> Json:
    return {"id": user.id, "email": user.email, "username": user.username, "full_name": user.full_name}


def task_json(task: Task) -> Json:
    return {
        "id": task.id,
        "task_id": task.id,
        "video_id": task.video_id,
        "liveroom_id": task.liveroom_id,
        "liveroom_title": task.liveroom_title,
        "liveroom_url": task.liveroom_url,
        "resource_url": task.resource_url,
        "resource_type": task.resource_type.value,
        "status": task.status.value,
        "progress": task.progress,
        "bytes_downloaded": task.bytes_downloaded,
        "bytes_total": task.bytes_total,
        "segments_total": task.segments_total,
        "segments_done": task.segments_done,
        "segments_failed": task.segments_failed,
        "retry_count": task.retry_count,
        "last_error": task.last_error,
        "create_time": _time(task.create_time),
        "update_time": _time(task.update_time),
        "complete_time": _time(task.complete_time),
    }


def event_json(event: TaskEvent) -> Json:
    return {
        "task_id": event.task_id,
        "status": event.status.value,
        "progress": event.progress,
        "bytes_downloaded": event.bytes_downloaded,
        "bytes_total": event.bytes_total,
        "segments_done": event.segments_done,
        "segments_failed": event.segments_failed,
        "segments_total": event.segments_total,
        "speed_bytes_per_second": event.speed_bytes_per_second,
        "eta_seconds": event.eta_seconds,
        "message": event.message,
        "event_time": _time(event.event_time),
    }


def failure_json(failure: Failure) -> Json:
    return {
        "id": failure.id,
        "task_id": failure.task_id,
        "segment_index": failure.segment_index,
        "segment_url": failure.segment_url,
        "error_type": failure.error_type,
        "error_message": failure.error_message,
        "http_status": failure.http_status,
        "attempts": failure.attempts,
        "status": failure.status.value,
        "create_time": _time(failure.create_time),
        "update_time": _time(failure.update_time),
    }


def video_json(video: Video) -> Json:
    return {
        "id": video.id,
        "task_id": video.task_id,
        "video_id": video.video_id,
        "file_path": video.file_path,
        "file_size": video.file_size,
        "duration_seconds": video.duration_seconds,
        "format": video.format,
        "segment_count": video.segment_count,
        "sha256": video.sha256,
        "create_time": _time(video.create_time),
        "thumbnail_path": video.thumbnail_path,
    }


def page_json(page: Page[T], key: str, convert: Callable[[T], Json]) -> Json:
    return {
        key: [convert(item) for item in page],
        "next_page_token": page.next_page_token,
        "total_size": page.total_size,
    }
