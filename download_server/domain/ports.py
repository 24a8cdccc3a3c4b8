"""What the use cases and the engine need from persistence, as an async port (SQL adapter implements it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from download_server.domain.models import Failure, FailureStatus, Segment, Task, TaskStatus, Video


class TaskStore(Protocol):
    """Async persistence for tasks, segments, failures and videos.

    Every method is one transaction. `user_id`, where taken, scopes the lookup: another user's row is
    reported exactly like a missing one (NotFound). The SQL implementation runs each call in the
    database thread pool, so the event loop never waits on SQL.
    """

    # Tasks
    async def get_task(self, task_id: str, user_id: str | None = None) -> Task: ...
    async def save_task(self, task: Task) -> None: ...
    async def tasks_with_status(self, statuses: Sequence[TaskStatus]) -> list[Task]: ...

    # Segments (one row per segment; index 0 is the whole file for MP4 and images)
    async def list_segments(self, task_id: str) -> list[Segment]: ...
    async def add_segments(self, task_id: str, segments: Sequence[Segment]) -> None: ...
    async def delete_segments(self, task_id: str) -> None: ...
    async def save_progress(self, task: Task, segments: Sequence[Segment]) -> None:
        """Write the task's counters and the given segments' states together (the engine's throttled flush)."""
        ...

    # Failures
    async def add_failure(self, failure: Failure) -> Failure: ...
    async def get_failure(self, failure_id: str, user_id: str | None = None) -> Failure: ...
    async def save_failure(self, failure: Failure) -> None: ...
    async def task_failures(self, task_id: str, statuses: Sequence[FailureStatus] = ()) -> list[Failure]: ...

    # Videos
    async def save_video(self, video: Video) -> Video:
        """Insert or replace the task's video record (one per task)."""
        ...
