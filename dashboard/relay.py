"""EventHub: one WatchTasks stream per browser session, fanned out to that session's open pages.

The stream opens when the first page listens and closes when the last one leaves, so a session with no page
open holds no gRPC stream. Each listener keeps only the newest event per task until its page reads it: a
slow page skips intermediate progress but never misses the latest state, and its memory is bounded by the
number of tasks. A page that joins (or reconnects) gets the hub's current state of every task first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any

from clients import AuthenticationError, MediadlError, TaskEvent, TaskEventStream
from dashboard.serialize import event_json

log = logging.getLogger(__name__)

Item = dict[str, Any]


class HubClosed(Exception):
    """The hub's stream ended; `reason` is "expired" (log in again), "logout", "shutdown" or "unavailable"."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message


class Listener:
    """What one page has not read yet: the newest item per task, in arrival order."""

    def __init__(self) -> None:
        self._pending: OrderedDict[str, Item] = OrderedDict()
        self._wakeup = asyncio.Event()
        self._closed: HubClosed | None = None

    def offer(self, item: Item) -> None:
        task_id = item["task_id"]
        self._pending.pop(task_id, None)  # re-insert: the newest goes last
        self._pending[task_id] = item
        self._wakeup.set()

    def close(self, closed: HubClosed) -> None:
        if self._closed is None:
            self._closed = closed
            self._wakeup.set()

    async def next_batch(self, wait_seconds: float) -> list[Item] | None:
        """Everything pending (oldest first), waiting up to `wait_seconds` for something; None if nothing came.

        Raises HubClosed once the pending items are delivered and the hub has ended.
        """
        if not self._pending and self._closed is None:
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), wait_seconds)
        if self._pending:
            batch = list(self._pending.values())
            self._pending.clear()
            return batch
        if self._closed is not None:
            raise self._closed
        return None


class EventHub:
    """Owns the session's WatchTasks stream; `open_stream` opens a new one (the session's client)."""

    def __init__(self, open_stream: Callable[[], TaskEventStream]) -> None:
        self._open_stream = open_stream
        self._listeners: set[Listener] = set()
        self._latest: dict[str, Item] = {}
        self._pump: asyncio.Task[None] | None = None
        self._closed: HubClosed | None = None
        self.streams_opened = 0  # how many gRPC streams this hub has opened (observability, tests)
        self.idle = asyncio.Event()  # set while no stream is open: await it to know one has closed
        self.idle.set()

    @property
    def streaming(self) -> bool:
        return self._pump is not None and not self._pump.done()

    @property
    def listener_count(self) -> int:
        return len(self._listeners)

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[Listener]:
        """A new listener, primed with the current state of every task; leaving the block removes it."""
        listener = Listener()
        if self._closed is not None:
            listener.close(self._closed)
            yield listener
            return
        for item in self._latest.values():
            listener.offer(item)
        self._listeners.add(listener)
        if not self.streaming:
            self._start()
        try:
            yield listener
        finally:
            self._listeners.discard(listener)
            if not self._listeners:
                await self._stop()

    def forget(self, task_id: str) -> None:
        """A task was deleted: drop it, and tell every page to remove its row."""
        self._latest.pop(task_id, None)
        for listener in self._listeners:
            listener.offer({"task_id": task_id, "removed": True})

    async def close(self, reason: str, message: str = "") -> None:
        """End for good (logout, expiry, shutdown): every listener gets HubClosed(reason) after its pending items."""
        self._closed = HubClosed(reason, message)
        for listener in self._listeners:
            listener.close(self._closed)
        await self._stop()

    def _start(self) -> None:
        self.streams_opened += 1
        self.idle.clear()
        self._pump = asyncio.create_task(self._run(), name="dashboard-watch-tasks")

    async def _stop(self) -> None:
        pump, self._pump = self._pump, None
        # The state is only current while a stream runs; the next stream starts with a fresh snapshot.
        self._latest.clear()
        if pump is not None and not pump.done():
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        self.idle.set()

    async def _run(self) -> None:
        ended: HubClosed
        try:
            async with self._open_stream() as events:
                async for event in events:
                    self._publish(event)
            ended = HubClosed("unavailable", "the download server ended the stream")
        except AuthenticationError as exc:
            ended = HubClosed("expired", exc.message)
        except MediadlError as exc:
            log.warning("task stream failed: %s (%s)", exc.message, exc.code)
            ended = HubClosed("unavailable", exc.message)
        except Exception:
            # A bug here must still end the pages' streams (they reconnect) rather than leave them waiting.
            log.exception("task stream relay failed")
            ended = HubClosed("unavailable", "the dashboard lost the task stream")
        # This stream's listeners are told and let go; their pages reconnect (a new stream) or log in again.
        for listener in self._listeners:
            listener.close(ended)
        self._listeners.clear()
        self._latest.clear()
        self.idle.set()

    def _publish(self, event: TaskEvent) -> None:
        item = event_json(event)
        self._latest[event.task_id] = item
        for listener in self._listeners:
            listener.offer(item)
