"""What the use cases need from the outside: storage queries, the scheduler that runs tasks, task files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from download_server.domain.listing import Cursor, FailureQuery, Page, TaskQuery, VideoQuery
from download_server.domain.models import Failure, Task, Video
from download_server.domain.ports import TaskStore

# Refuses (raises UrlRefused) a URL the server must not fetch; see download_server.engine.url_policy.
UrlChecker = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class DeletedTask:
    """What a deletion removed, so the caller can clean up the files the rows pointed at."""

    task: Task
    video: Video | None


class Store(TaskStore, Protocol):
    """The engine's TaskStore plus what the API use cases need: scoped changes, deletion and pages."""

    async def update_task(self, task_id: str, user_id: str | None, change: Callable[[Task], bool]) -> Task: ...
    async def delete_task(self, task_id: str, user_id: str | None = None) -> DeletedTask: ...
    async def list_tasks(self, query: TaskQuery, cursor: Cursor | None, limit: int) -> Page[Task]: ...
    async def update_failure(
        self, failure_id: str, user_id: str | None, change: Callable[[Failure], None]
    ) -> Failure: ...
    async def list_failures(self, query: FailureQuery, cursor: Cursor | None, limit: int) -> Page[Failure]: ...
    async def get_video(self, video_id: str, user_id: str) -> Video: ...
    async def list_videos(self, query: VideoQuery, cursor: Cursor | None, limit: int) -> Page[Video]: ...


class Scheduler(Protocol):
    """Owns running downloads. The use cases check ownership and state first, then ask it to act.

    Each method performs the task's state change (and persists it) before it returns, raising
    FailedPrecondition if the state changed meanwhile; `delete` stops anything running for the task.
    """

    async def start(self, task_id: str) -> None: ...
    async def pause(self, task_id: str) -> None: ...
    async def resume(self, task_id: str) -> None: ...
    async def cancel(self, task_id: str) -> None: ...
    async def delete(self, task_id: str) -> None: ...


class TaskFiles(Protocol):
    """The files a task left under the storage directory."""

    async def remove(self, task: Task, video: Video | None) -> None: ...
