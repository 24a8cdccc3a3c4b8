"""SqlTaskStore: the engine's TaskStore port over the unit of work, one transaction per call."""

from __future__ import annotations

from collections.abc import Sequence

from download_server.adapters.unit_of_work import SqlTransactions
from download_server.domain.models import Failure, FailureStatus, Segment, Task, TaskStatus, Video
from download_server.domain.repositories import UnitOfWork


class SqlTaskStore:
    """What a running download reads and writes; each method is one small transaction off the event loop."""

    def __init__(self, transactions: SqlTransactions) -> None:
        self._tx = transactions

    async def get_task(self, task_id: str, user_id: str | None = None) -> Task:
        return await self._tx.read_task(task_id, user_id)

    async def save_task(self, task: Task) -> None:
        await self._tx.run(lambda uow: uow.tasks.add(task))

    async def user_bytes(self, user_id: str) -> int:
        return await self._tx.run(lambda uow: uow.tasks.stored_bytes(user_id))

    async def tasks_with_status(self, statuses: Sequence[TaskStatus]) -> list[Task]:
        return await self._tx.run(lambda uow: uow.tasks.with_status(statuses))

    async def tasks_by_ids(self, task_ids: Sequence[str]) -> list[Task]:
        """The tasks among `task_ids` that exist (a replica re-reads what its watchers wait on after a relay gap)."""
        return await self._tx.run(lambda uow: uow.tasks.by_ids(task_ids))

    async def list_segments(self, task_id: str) -> list[Segment]:
        return await self._tx.run(lambda uow: uow.segments.of_task(task_id))

    async def pending_segments(self, task_id: str, after_index: int, limit: int) -> list[Segment]:
        return await self._tx.run(lambda uow: uow.segments.pending(task_id, after_index, limit))

    async def add_segments(self, task_id: str, segments: Sequence[Segment]) -> None:
        def work(uow: UnitOfWork) -> None:
            uow.tasks.get(task_id)  # NotFound for a task deleted meanwhile
            uow.segments.add(task_id, segments)

        await self._tx.run(work)

    async def save_progress(self, task: Task, segments: Sequence[Segment]) -> None:
        # Counters only: the status belongs to whoever changes state (user actions, the engine's finish),
        # so a throttled progress flush can never undo a pause or a cancel that raced it.
        def work(uow: UnitOfWork) -> None:
            uow.tasks.save_counters(task)
            uow.segments.save(task.id, segments)

        await self._tx.run(work)

    async def add_failure(self, failure: Failure) -> Failure:
        return await self._tx.run(lambda uow: uow.failures.add(failure))

    async def get_failure(self, failure_id: str, user_id: str | None = None) -> Failure:
        return await self._tx.run(lambda uow: uow.failures.get(failure_id, user_id))

    async def save_failure(self, failure: Failure) -> None:
        await self._tx.run(lambda uow: uow.failures.save(failure))

    async def task_failures(self, task_id: str, statuses: Sequence[FailureStatus] = ()) -> list[Failure]:
        return await self._tx.run(lambda uow: uow.failures.of_task(task_id, statuses))

    async def save_video(self, video: Video) -> Video:
        return await self._tx.run(lambda uow: uow.videos.save(video))
