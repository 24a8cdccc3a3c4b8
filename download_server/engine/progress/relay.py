"""Signals between replicas: progress events, "work available" nudges, and commands for a task's lease holder.

In one process (SQLite, the engine's tests) LocalRelay carries nothing: the broker fans out in memory and the
scheduler acts on its own commands. On PostgreSQL, adapters.pg_notify.PgRelay carries all three with
LISTEN/NOTIFY, so a watch stream on any replica sees every task's events.
"""

from __future__ import annotations

from collections.abc import Callable

from download_server.domain.models import TaskEvent
from download_server.domain.ports import EventSink, Relay
from download_server.engine.progress.broker import ProgressBroker


class LocalRelay:
    """One process: nothing to carry."""

    def bind(self, broker: EventSink, on_work: Callable[[], None], on_command: Callable[[str], None]) -> None:
        pass

    def send_event(self, event: TaskEvent) -> None:
        pass

    def work_available(self) -> None:
        pass

    def command(self, task_id: str) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class RelayedBroker(ProgressBroker):
    """The broker the engine publishes to: local watchers at once, other replicas through the relay."""

    def __init__(self, relay: Relay | None = None) -> None:
        super().__init__()
        self._relay = relay or LocalRelay()

    def publish(self, event: TaskEvent) -> None:
        super().publish(event)
        self._relay.send_event(event)

    def deliver(self, event: TaskEvent) -> None:
        """An event from another replica: for local watchers only."""
        super().publish(event)

    def unsettled(self, limit: int = 5000) -> list[str]:
        """Tasks a watcher here may still wait on (a subscription, or a last event that ends nothing): what
        to read again after a gap in the relay, so that no stream waits forever for a terminal event it missed."""
        ids = dict.fromkeys(self._by_task)
        for task_id, event in reversed(self._latest.items()):
            if len(ids) >= limit:
                break
            if not event.status.ends_stream:
                ids[task_id] = None
        return list(ids)
