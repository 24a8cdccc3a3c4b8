"""StateOnlyScheduler: the Scheduler until the engine lands; it changes and stores state, downloads nothing."""

from __future__ import annotations

from download_server.domain.models import Task, TaskStatus
from download_server.services.ports import Store

_TARGETS = {
    "start": TaskStatus.PROCESSING,
    "pause": TaskStatus.PAUSED,
    "resume": TaskStatus.PROCESSING,
    "cancel": TaskStatus.CANCELLED,
}


class StateOnlyScheduler:
    """Applies each action's transition in one locked transaction (FailedPrecondition if not allowed)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def _apply(self, task_id: str, action: str) -> None:
        def change(task: Task) -> bool:
            task.transition(action, _TARGETS[action])
            return False

        await self._store.update_task(task_id, None, change)

    async def start(self, task_id: str) -> None:
        await self._apply(task_id, "start")

    async def pause(self, task_id: str) -> None:
        await self._apply(task_id, "pause")

    async def resume(self, task_id: str) -> None:
        await self._apply(task_id, "resume")

    async def cancel(self, task_id: str) -> None:
        await self._apply(task_id, "cancel")

    async def delete(self, task_id: str) -> None:
        """Nothing runs without an engine, so there is nothing to stop."""
