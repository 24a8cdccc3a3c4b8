"""The download server's NOT_FOUND errors: one message shape whether a thing is missing or someone else's."""

from __future__ import annotations

from mediadl_common.errors import NotFound


def task_missing(task_id: str) -> NotFound:
    # Existence must not leak: the same message and reason for "missing" and "another user's".
    return NotFound(f"task {task_id} not found", reason="TASK_NOT_FOUND")


def failure_missing(failure_id: str) -> NotFound:
    return NotFound(f"failure {failure_id} not found", reason="FAILURE_NOT_FOUND")


def video_missing(video_id: str) -> NotFound:
    return NotFound(f"video {video_id} not found", reason="VIDEO_NOT_FOUND")
