"""A download replica in tests stopped mid-run and another one recovering its task: the failover steps the
S3, scheduler and MP4-builder tests share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from download_server.domain.models import Task, TaskEvent
from download_server.engine.scheduling.scheduler import ReplicaScheduler


class Replica(Protocol):
    """What the failover helpers need of a test harness (tests/download/engine/conftest.py `Harness`)."""

    @property
    def scheduler(self) -> ReplicaScheduler: ...

    async def start_until(self, task: Task, predicate: Callable[[TaskEvent], bool]) -> TaskEvent: ...


async def stop_mid_run(replica: Replica, task: Task, until: Callable[[TaskEvent], bool]) -> None:
    """Start `task` on `replica` until an event satisfies `until`, then take the replica away: its run stops
    where it is (rows PROCESSING, an upload left open), as a replica that dies or drains leaves it."""
    try:
        await replica.start_until(task, until)
    finally:
        await replica.scheduler.close()


async def recover_to_the_end(replica: Replica, task_id: str) -> None:
    """`replica` starts up (recovery claims the one waiting task), runs the task to a terminal event, and
    goes away."""
    scheduler = replica.scheduler
    try:
        with scheduler.broker.subscribe(task_id=task_id) as sub:
            assert await scheduler.recover() == [task_id]
            async for event in sub:
                if event.status.is_terminal:
                    break
    finally:
        await scheduler.close()
