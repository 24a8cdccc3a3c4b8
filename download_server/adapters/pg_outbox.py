"""NotifyOutbox: what a replica has yet to NOTIFY, coalesced per task and kept in order (no I/O)."""

from __future__ import annotations

import json
from collections import OrderedDict

from download_server.adapters.pg_events import encode_event
from download_server.domain.models import TaskEvent

EVENTS, WORK, COMMANDS = "mediadl_task_events", "mediadl_work", "mediadl_commands"
# Events waiting to be sent, per task: status changes in order, only the newest progress of a status.
MAX_PENDING_PER_TASK = 16

# (channel, payload, the event the payload encodes or None for a signal): the event is kept so a batch
# that failed to send can be put back and coalesced again with what arrived meanwhile.
Batch = list[tuple[str, str, TaskEvent | None]]


class NotifyOutbox:
    """Filled without blocking by whoever publishes; emptied, one batch at a time, by the one sender."""

    def __init__(self, origin: str) -> None:
        self._origin = origin
        self._events: OrderedDict[str, list[TaskEvent]] = OrderedDict()
        self._signals: list[tuple[str, str]] = []

    def add_event(self, event: TaskEvent) -> None:
        queue = self._events.get(event.task_id)
        if queue is None:
            self._events[event.task_id] = [event]
        elif queue[-1].status is event.status and not event.status.ends_stream:
            queue[-1] = event
        else:
            queue.append(event)
            if len(queue) > MAX_PENDING_PER_TASK:
                del queue[next((i for i, e in enumerate(queue[:-1]) if not e.status.ends_stream), 0)]

    def add_work(self) -> None:
        # One pending nudge says it all: the others look for work whatever the number of nudges.
        if (WORK, self._origin) not in self._signals:
            self._signals.append((WORK, self._origin))

    def add_command(self, task_id: str) -> None:
        self._signals.append((COMMANDS, json.dumps({"o": self._origin, "t": task_id})))

    def take(self) -> Batch:
        """Everything pending, events first, and the outbox emptied."""
        batch: Batch = [
            (EVENTS, encode_event(event, self._origin), event) for queue in self._events.values() for event in queue
        ]
        batch += [(channel, payload, None) for channel, payload in self._signals]
        self._events.clear()
        self._signals.clear()
        return batch

    def put_back(self, batch: Batch) -> None:
        """Return a batch that was not sent ahead of what was added since, coalesced as if never taken."""
        newer_events, newer_signals = self._events, self._signals
        self._events, self._signals = OrderedDict(), []
        for channel, payload, event in batch:
            if event is not None:
                self.add_event(event)
            elif (channel, payload) not in self._signals:
                self._signals.append((channel, payload))
        for queue in newer_events.values():
            for event in queue:
                self.add_event(event)
        self._signals += [signal for signal in newer_signals if signal not in self._signals]
