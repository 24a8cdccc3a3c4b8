"""FakeTaskStore: the TaskStore port in memory, copying on every call like a database would."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from download_server.domain.models import Failure, FailureStatus, Segment, SegmentStatus, Task, TaskStatus, Video
from download_server.domain.ports import TaskStore
from mediadl_common.errors import AlreadyExists, NotFound


class FakeTaskStore:
    """Implements download_server.domain.ports.TaskStore exactly, with no sharing of objects.

    Every value goes in and comes out as a copy, so a test passes only if the engine really saves what it
    changes (as with the SQL store). `calls` counts method calls (to check that flushes are throttled).
    """

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.segments: dict[str, dict[int, Segment]] = {}
        self.failures: dict[str, Failure] = {}
        self.videos: dict[str, Video] = {}
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    # Tasks
    async def get_task(self, task_id: str, user_id: str | None = None) -> Task:
        self._count("get_task")
        task = self.tasks.get(task_id)
        if task is None or (user_id is not None and task.user_id != user_id):
            raise NotFound(f"task {task_id} not found")
        return copy.deepcopy(task)

    async def save_task(self, task: Task) -> None:
        self._count("save_task")
        self.tasks[task.id] = copy.deepcopy(task)

    async def tasks_with_status(self, statuses: Sequence[TaskStatus]) -> list[Task]:
        self._count("tasks_with_status")
        return [copy.deepcopy(t) for t in self.tasks.values() if t.status in statuses]

    # Segments
    async def list_segments(self, task_id: str) -> list[Segment]:
        self._count("list_segments")
        rows = self.segments.get(task_id, {})
        return [copy.deepcopy(rows[i]) for i in sorted(rows)]

    async def pending_segments(self, task_id: str, after_index: int, limit: int) -> list[Segment]:
        self._count("pending_segments")
        rows = self.segments.get(task_id, {})
        found = (rows[i] for i in sorted(rows) if i > after_index and rows[i].status is SegmentStatus.PENDING)
        return [copy.deepcopy(s) for s, _ in zip(found, range(limit), strict=False)]

    async def add_segments(self, task_id: str, segments: Sequence[Segment]) -> None:
        self._count("add_segments")
        rows = self.segments.setdefault(task_id, {})
        for segment in segments:
            if segment.index in rows:
                raise AlreadyExists(f"segment {segment.index} of task {task_id} exists already")
            rows[segment.index] = copy.deepcopy(segment)

    def remove_task(self, task_id: str) -> Video | None:
        """What a deletion does in one transaction: the task and everything that hangs off it (MemoryLeases)."""
        self._count("remove_task")
        self.tasks.pop(task_id)
        self.segments.pop(task_id, None)
        for failure_id in [f.id for f in self.failures.values() if f.task_id == task_id]:
            del self.failures[failure_id]
        return self.videos.pop(task_id, None)

    async def save_progress(self, task: Task, segments: Sequence[Segment]) -> None:
        self._count("save_progress")
        stored = self.tasks.get(task.id)
        if stored is None:
            raise NotFound(f"task {task.id} not found")
        for name in (
            "progress",
            "bytes_downloaded",
            "bytes_total",
            "segments_total",
            "segments_done",
            "segments_failed",
            "update_time",
        ):
            setattr(stored, name, getattr(task, name))
        rows = self.segments.setdefault(task.id, {})
        for segment in segments:
            rows[segment.index] = copy.deepcopy(segment)

    # Failures
    async def add_failure(self, failure: Failure) -> Failure:
        self._count("add_failure")
        self.failures[failure.id] = copy.deepcopy(failure)
        return copy.deepcopy(failure)

    async def get_failure(self, failure_id: str, user_id: str | None = None) -> Failure:
        self._count("get_failure")
        failure = self.failures.get(failure_id)
        if failure is None or (user_id is not None and self.tasks[failure.task_id].user_id != user_id):
            raise NotFound(f"failure {failure_id} not found")
        return copy.deepcopy(failure)

    async def save_failure(self, failure: Failure) -> None:
        self._count("save_failure")
        if failure.id not in self.failures:
            raise NotFound(f"failure {failure.id} not found")
        self.failures[failure.id] = copy.deepcopy(failure)

    async def task_failures(self, task_id: str, statuses: Sequence[FailureStatus] = ()) -> list[Failure]:
        self._count("task_failures")
        found = [f for f in self.failures.values() if f.task_id == task_id and (not statuses or f.status in statuses)]
        return [copy.deepcopy(f) for f in sorted(found, key=lambda f: (f.segment_index, f.create_time))]

    # Videos
    async def user_bytes(self, user_id: str) -> int:
        return sum(t.bytes_downloaded for t in self.tasks.values() if t.user_id == user_id)

    async def save_video(self, video: Video) -> Video:
        self._count("save_video")
        self.videos[video.task_id] = copy.deepcopy(video)
        return copy.deepcopy(video)


def as_port(store: FakeTaskStore) -> TaskStore:
    """Never called: makes mypy check that FakeTaskStore satisfies the TaskStore protocol."""
    return store
