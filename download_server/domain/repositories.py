"""The unit of work and its repositories: how a use case reads and changes tasks, segments, failures and videos.

A use case passes one function to `Transactions.run`; everything that function does through the unit of
work is one transaction (committed when it returns, rolled back when it raises), run off the event loop.
Repositories are synchronous: they live inside that transaction. `user_id`, where taken, scopes a lookup:
another user's row is reported exactly like a missing one (NotFound).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from download_server.domain.listing import Cursor, FailureQuery, Page, TaskQuery, VideoQuery
from download_server.domain.models import Failure, FailureStatus, Segment, Task, TaskStatus, Video

T = TypeVar("T")


class TaskRepository(Protocol):
    def get(self, task_id: str, user_id: str | None = None, *, lock: bool = False) -> Task:
        """The task (NotFound if missing or another user's); `lock` holds its row until the transaction ends."""
        ...

    def add(self, task: Task) -> None:
        """Insert the task, or overwrite every field of the row it has."""
        ...

    def save(self, task: Task) -> None:
        """Write every field of the task onto its row."""
        ...

    def save_counters(self, task: Task) -> None:
        """Progress counters only: never the status, which only state changes write."""
        ...

    def remove(self, task_id: str) -> None:
        """Delete the task's row with its segments, failures and video record."""
        ...

    def with_status(self, statuses: Sequence[TaskStatus]) -> list[Task]: ...
    def by_ids(self, task_ids: Sequence[str]) -> list[Task]: ...
    def of_user(self, user_id: str, statuses: Sequence[TaskStatus] = ()) -> list[Task]: ...
    def stored_bytes(self, user_id: str) -> int:
        """The sum of the user's tasks' bytes_downloaded (DOWNLOAD_USER_QUOTA_BYTES counts this)."""
        ...

    def page(self, query: TaskQuery, cursor: Cursor | None, limit: int) -> Page[Task]: ...


class SegmentRepository(Protocol):
    def of_task(self, task_id: str) -> list[Segment]: ...
    def pending(self, task_id: str, after_index: int, limit: int) -> list[Segment]:
        """Up to `limit` PENDING segments with an index above `after_index`, in index order."""
        ...

    def add(self, task_id: str, segments: Sequence[Segment]) -> None:
        """Insert new segments (AlreadyExists if an index is taken)."""
        ...

    def save(self, task_id: str, segments: Sequence[Segment]) -> None:
        """Insert or update the segments' rows."""
        ...

    def remove_all(self, task_id: str) -> None: ...


class FailureRepository(Protocol):
    def get(self, failure_id: str, user_id: str | None = None, *, lock: bool = False) -> Failure: ...
    def add(self, failure: Failure) -> Failure: ...
    def save(self, failure: Failure) -> None: ...
    def of_task(self, task_id: str, statuses: Sequence[FailureStatus] = ()) -> list[Failure]: ...
    def abandon_open(self, task_id: str, when: datetime) -> None:
        """Every open record of the task becomes ABANDONED (what they name can no longer be retried)."""
        ...

    def page(self, query: FailureQuery, cursor: Cursor | None, limit: int) -> Page[Failure]: ...


class VideoRepository(Protocol):
    def of_task(self, task_id: str) -> Video | None: ...
    def save(self, video: Video) -> Video:
        """Insert the task's video record, or overwrite the one it has (keeping that record's id)."""
        ...

    def newest(self, video_id: str, user_id: str) -> Video:
        """The caller's record for a business video_id (the newest, should several tasks share it)."""
        ...

    def remove_of_task(self, task_id: str) -> None: ...
    def page(self, query: VideoQuery, cursor: Cursor | None, limit: int) -> Page[Video]: ...


class UnitOfWork(Protocol):
    tasks: TaskRepository
    segments: SegmentRepository
    failures: FailureRepository
    videos: VideoRepository


class Transactions(Protocol):
    async def run(self, work: Callable[[UnitOfWork], T]) -> T:
        """Run `work` in one transaction, off the event loop; a DomainError it raises rolls everything back."""
        ...

    async def read_task(self, task_id: str, user_id: str | None = None) -> Task:
        """One task by id, owned by `user_id` when given (NotFound otherwise): the hot read, no unit of work."""
        ...
