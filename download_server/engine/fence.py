"""LeaseFence: a run writes only while this replica's lease on its task surely holds.

A replica that stalls (SIGSTOP, a frozen VM) past its lease may find, when it wakes, that another replica
has claimed the task and finished it. Its renewal loop notices at its next turn, but the run itself wakes
at once: without a fence, its next progress flush, file commit or event would land on the other replica's
work. So every write of a run (rows through FencedStore, files through FencedWriter, events through the
tracker) first asks the fence, which holds until the lease's local deadline (time.monotonic(), which keeps
counting while a process is stopped) less a margin; renewals move the deadline on.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from download_server.domain.models import Failure, FailureStatus, Segment, Task, TaskStatus, Video
from download_server.domain.ports import MediaStore, PartUpload, StoredObject, TaskStore

T = TypeVar("T")


class LeaseLost(BaseException):
    """The run may no longer write (its lease may have lapsed). A BaseException, like a cancellation: no
    handler meant for failed fetches or disk errors may turn it into a failure record."""


class LeaseFence:
    def __init__(self, deadline: float = math.inf, margin: float = 0.0) -> None:
        self.deadline = deadline  # time.monotonic() when the lease lapses unless renewed
        self.margin = margin

    def holds(self) -> bool:
        return time.monotonic() < self.deadline - self.margin

    def check(self) -> None:
        if not self.holds():
            raise LeaseLost("this replica's lease on the task may have lapsed: nothing more is written")


class DiskRunner(Protocol):
    """What file sinks need from the disk writer (engine/files/disk.py)."""

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]: ...


class FencedWriter:
    """The shared disk writer, for one run: no file is written or committed once the fence is down."""

    def __init__(self, writer: DiskRunner, fence: LeaseFence) -> None:
        self._writer = writer
        self._fence = fence

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        self._fence.check()
        return self._writer.run(fn)


class FencedStore:
    """The engine's TaskStore, for one run: reads pass, writes only while the fence holds."""

    def __init__(self, store: TaskStore, fence: LeaseFence) -> None:
        self._store = store
        self._fence = fence

    # Reads
    async def get_task(self, task_id: str, user_id: str | None = None) -> Task:
        return await self._store.get_task(task_id, user_id)

    async def tasks_with_status(self, statuses: Sequence[TaskStatus]) -> list[Task]:
        return await self._store.tasks_with_status(statuses)

    async def list_segments(self, task_id: str) -> list[Segment]:
        return await self._store.list_segments(task_id)

    async def pending_segments(self, task_id: str, after_index: int, limit: int) -> list[Segment]:
        return await self._store.pending_segments(task_id, after_index, limit)

    async def get_failure(self, failure_id: str, user_id: str | None = None) -> Failure:
        return await self._store.get_failure(failure_id, user_id)

    async def task_failures(self, task_id: str, statuses: Sequence[FailureStatus] = ()) -> list[Failure]:
        return await self._store.task_failures(task_id, statuses)

    async def user_bytes(self, user_id: str) -> int:
        return await self._store.user_bytes(user_id)

    # Writes
    async def save_task(self, task: Task) -> None:
        self._fence.check()
        await self._store.save_task(task)

    async def add_segments(self, task_id: str, segments: Sequence[Segment]) -> None:
        self._fence.check()
        await self._store.add_segments(task_id, segments)

    async def save_progress(self, task: Task, segments: Sequence[Segment]) -> None:
        self._fence.check()
        await self._store.save_progress(task, segments)

    async def add_failure(self, failure: Failure) -> Failure:
        self._fence.check()
        return await self._store.add_failure(failure)

    async def save_failure(self, failure: Failure) -> None:
        self._fence.check()
        await self._store.save_failure(failure)

    async def save_video(self, video: Video) -> Video:
        self._fence.check()
        return await self._store.save_video(video)


class FencedMedia:
    """The media store, for one run: reads pass, publishing and removing only while the fence holds (an
    upload already under way when the fence falls still completes: it carries the same whole file)."""

    def __init__(self, media: MediaStore, fence: LeaseFence) -> None:
        self._media = media
        self._fence = fence

    @property
    def remote(self) -> bool:
        return self._media.remote

    def describe(self) -> str:
        return self._media.describe()

    async def check(self) -> None:
        await self._media.check()

    async def listing(self, prefix: str) -> dict[str, int]:
        return await self._media.listing(prefix)

    async def stat(self, key: str) -> StoredObject | None:
        return await self._media.stat(key)

    async def fetch(self, key: str, path: Path) -> None:
        await self._media.fetch(key, path)

    def read(self, key: str, offset: int, chunk: int) -> AsyncGenerator[bytes, None]:
        return self._media.read(key, offset, chunk)

    async def open_uploads(self, key: str) -> list[PartUpload]:
        return await self._media.open_uploads(key)

    async def publish(self, key: str, path: Path, sha256: str = "") -> None:
        self._fence.check()
        await self._media.publish(key, path, sha256)

    async def remove(self, prefixes: Sequence[str]) -> None:
        self._fence.check()
        await self._media.remove(prefixes)

    async def abort_uploads(self, prefixes: Sequence[str]) -> int:
        self._fence.check()
        return await self._media.abort_uploads(prefixes)

    async def start_upload(self, key: str) -> PartUpload:
        self._fence.check()
        return await self._media.start_upload(key)

    async def close(self) -> None:
        return None  # the scheduler closes the shared store, not one run
