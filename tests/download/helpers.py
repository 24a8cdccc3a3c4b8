"""Builders for download-server tests: domain objects with sensible defaults, overridable per test."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from download_server.adapters.leases import SqlLeases
from download_server.adapters.store import SqlTaskStore
from download_server.adapters.unit_of_work import SqlTransactions
from download_server.domain.models import Failure, ResourceType, Segment, Task, TaskStatus, Video, VideoFormat
from mediadl_common.db import Database


def new_id() -> str:
    return str(uuid.uuid4())


def make_task(user_id: str, **overrides: Any) -> Task:
    values: dict[str, Any] = {
        "id": new_id(),
        "user_id": user_id,
        "video_id": new_id(),
        "liveroom_id": "room-1",
        "liveroom_title": "Evening show",
        "liveroom_url": "https://live.example.com/room-1",
        "resource_url": "https://cdn.example.com/live/index.m3u8",
        "resource_type": ResourceType.HLS,
        "status": TaskStatus.PENDING,
    }
    values.update(overrides)
    return Task(**values)


def make_segment(task_id: str, index: int, **overrides: Any) -> Segment:
    values: dict[str, Any] = {"task_id": task_id, "index": index, "uri": f"https://cdn.example.com/seg{index}.ts"}
    values.update(overrides)
    return Segment(**values)


def make_failure(task_id: str, **overrides: Any) -> Failure:
    values: dict[str, Any] = {
        "id": new_id(),
        "task_id": task_id,
        "segment_index": 3,
        "segment_url": "https://cdn.example.com/seg3.ts",
        "error_type": "HTTP_ERROR",
        "error_message": "404 Not Found",
        "http_status": 404,
    }
    values.update(overrides)
    return Failure(**values)


def make_video(task: Task, **overrides: Any) -> Video:
    values: dict[str, Any] = {
        "id": new_id(),
        "task_id": task.id,
        "video_id": task.video_id,
        "file_path": f"hls/{task.id}/index.m3u8",
        "file_size": 1234,
        "duration_seconds": 12.5,
        "format": VideoFormat.HLS,
    }
    values.update(overrides)
    return Video(**values)


def at(seconds: float) -> datetime:
    """A fixed instant plus `seconds`, with microseconds, for ordering tests independent of the clock."""
    return datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=UTC) + timedelta(seconds=seconds)


def sql_store(db: Database) -> SqlTaskStore:
    """The engine's SQL store over its own unit of work."""
    return SqlTaskStore(SqlTransactions(db))


def sql_leases(db: Database) -> SqlLeases:
    return SqlLeases(SqlTransactions(db))
