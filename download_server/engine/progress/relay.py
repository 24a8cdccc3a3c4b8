"""Signals between replicas: progress events, "work available" nudges, and commands for a task's lease holder.

In one process (SQLite, the engine's tests) LocalRelay carries nothing: the broker fans out in memory and the
scheduler acts on its own commands. On PostgreSQL, adapters.pg_notify.PgRelay carries all three with
LISTEN/NOTIFY, so a watch stream on any replica sees every task's events.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from download_server.domain.models import TaskEvent, TaskStatus
from download_server.engine.progress import ProgressBroker

# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; keep a margin.
MAX_PAYLOAD = 7900
# A message longer than this is clipped before an event is sent by reference instead.
MAX_MESSAGE = 1000


class Relay(Protocol):
    def bind(self, broker: RelayedBroker, on_work: Callable[[], None], on_command: Callable[[str], None]) -> None:
        """Where signals from other replicas go: events to `broker`, nudges and commands to the scheduler."""
        ...

    def send_event(self, event: TaskEvent) -> None: ...
    def work_available(self) -> None: ...
    def command(self, task_id: str) -> None: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...


class LocalRelay:
    """One process: nothing to carry."""

    def bind(self, broker: RelayedBroker, on_work: Callable[[], None], on_command: Callable[[str], None]) -> None:
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


def encode_event(event: TaskEvent, origin: str) -> str:
    """Compact JSON of the event's fields, under the payload limit: a long message is clipped, and if that is
    not enough the event goes by reference (listeners read the task's row)."""
    fields: dict[str, Any] = {
        "o": origin,
        "t": event.task_id,
        "u": event.user_id,
        "s": event.status.value,
        "p": event.progress,
        "b": event.bytes_downloaded,
        "B": event.bytes_total,
        "d": event.segments_done,
        "f": event.segments_failed,
        "n": event.segments_total,
        "v": event.speed_bytes_per_second,
        "e": event.eta_seconds,
        "m": event.message,
        "at": event.event_time.isoformat(),
    }
    text = _dump(fields)
    if len(text.encode()) > MAX_PAYLOAD:
        fields["m"] = event.message[:MAX_MESSAGE]
        text = _dump(fields)
    if len(text.encode()) > MAX_PAYLOAD:
        text = _dump({"o": origin, "r": event.task_id})
    return text


def decode_event(payload: str) -> tuple[str, TaskEvent | str]:
    """(origin replica, the event) or, for an event sent by reference, (origin, its task id)."""
    fields = json.loads(payload)
    origin = str(fields["o"])
    if "r" in fields:
        return origin, str(fields["r"])
    return origin, TaskEvent(
        task_id=str(fields["t"]),
        user_id=str(fields["u"]),
        status=TaskStatus(fields["s"]),
        progress=float(fields["p"]),
        bytes_downloaded=int(fields["b"]),
        bytes_total=int(fields["B"]),
        segments_done=int(fields["d"]),
        segments_failed=int(fields["f"]),
        segments_total=int(fields["n"]),
        speed_bytes_per_second=float(fields["v"]),
        eta_seconds=float(fields["e"]),
        message=str(fields["m"]),
        event_time=datetime.fromisoformat(fields["at"]),
    )


def _dump(fields: dict[str, Any]) -> str:
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
