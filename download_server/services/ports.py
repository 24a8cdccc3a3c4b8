"""What the use cases need from the outside: storage queries, the scheduler that runs tasks, task files."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from download_server.domain.listing import Cursor, FailureQuery, Page, TaskQuery, VideoQuery
from download_server.domain.models import Failure, Task, TaskEvent, TaskStatus, Video
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
    async def user_tasks(self, user_id: str, statuses: Sequence[TaskStatus] = ()) -> list[Task]: ...
    async def update_failure(
        self, failure_id: str, user_id: str | None, change: Callable[[Failure], None]
    ) -> Failure: ...
    async def list_failures(self, query: FailureQuery, cursor: Cursor | None, limit: int) -> Page[Failure]: ...
    async def get_video(self, video_id: str, user_id: str) -> Video: ...
    async def list_videos(self, query: VideoQuery, cursor: Cursor | None, limit: int) -> Page[Video]: ...


class Scheduler(Protocol):
    """Owns running downloads (download_server.engine.scheduler). The use cases check ownership first,
    then ask it to act; it never sees a user id.

    Each action performs the task's state change (and persists it) before it returns, raising
    FailedPrecondition if the state does not allow it. `start` on a running or queued task does nothing
    (the caller attaches to it); `delete` stops anything running for the task; `retry_failure` returns
    the record after its one attempt. Watches are async generators: the current state at once, then events.
    """

    async def start(self, task_id: str) -> None: ...
    async def pause(self, task_id: str) -> None: ...
    async def resume(self, task_id: str) -> None: ...
    async def cancel(self, task_id: str) -> None: ...
    async def delete(self, task_id: str) -> None: ...
    async def retry(self, task_id: str) -> None: ...
    async def retry_failure(self, failure_id: str) -> Failure: ...

    def watch(self, task_id: str, load: Callable[[], Awaitable[Task]]) -> AsyncGenerator[TaskEvent, None]:
        """Until an event shows a terminal state or PAUSED. `load` reads the task (and may raise NotFound)."""
        ...

    def watch_user(
        self, user_id: str, load: Callable[[], Awaitable[list[Task]]], statuses: Iterable[TaskStatus] = ()
    ) -> AsyncGenerator[TaskEvent, None]:
        """Every task `load` returns, then every event of the user's tasks (in `statuses`, if any); endless."""
        ...


class TaskFiles(Protocol):
    """The files a task left under the storage directory."""

    async def remove(self, task: Task, video: Video | None) -> None: ...
