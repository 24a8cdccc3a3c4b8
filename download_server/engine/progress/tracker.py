"""ProgressTracker: one running task's throttled events (1-10 a second) and throttled database flushes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable

from download_server.domain.models import Segment, Task, TaskEvent
from download_server.domain.ports import TaskStore
from download_server.engine.fence import LeaseFence, LeaseLost
from download_server.engine.metrics import EngineMetrics, NoMetrics
from download_server.engine.progress.events import TaskEvents
from mediadl_common import spans

log = logging.getLogger(__name__)
SPEED_WINDOW_SECONDS = 5.0


class ProgressTracker:
    """The job mutates `task` and reports segments here; a ticker turns that into events and flushes.

    Events: at most one per `interval` while numbers change, and a heartbeat at least every `heartbeat`
    seconds. Database: counters and changed segments together, at most every `flush_interval` seconds,
    in the background so a slow database never stalls the download; state changes are flushed at once.
    """

    def __init__(
        self,
        task: Task,
        events: TaskEvents,
        store: TaskStore,
        *,
        interval: float,
        heartbeat: float,
        flush_interval: float,
        clock: Callable[[], float] = time.monotonic,
        metrics: EngineMetrics | None = None,
        fence: LeaseFence | None = None,
    ) -> None:
        self.task = task
        # No event once the run's lease may have lapsed (its writes go through a fenced store already).
        self._fence = fence
        self.message = ""
        self._events = events
        self._store = store
        self._interval = interval
        self._heartbeat = heartbeat
        self._flush_interval = flush_interval
        self._clock = clock
        self._received = 0
        self._metrics = metrics or NoMetrics()
        self._counted = 0  # of _received, what the metrics have been told (in batches, not per chunk)
        self._samples: deque[tuple[float, int]] = deque()
        self._changed = False  # since the last event
        self._unflushed = False  # since the last flush
        self._dirty: dict[int, Segment] = {}
        self._last_event = self._last_flush = clock()
        self._flush_lock = asyncio.Lock()
        self._flushing: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None

    # Called by the job (synchronous, cheap).
    def received(self, nbytes: int) -> None:
        """Bytes off the network (for speed), counted whether or not the attempt succeeds."""
        self._received += nbytes
        self._changed = self._unflushed = True

    def touched(self, segment: Segment | None = None) -> None:
        self._changed = self._unflushed = True
        if segment is not None:
            self._dirty[segment.index] = segment

    # Lifecycle
    def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick(), name=f"progress-{self.task.id}")

    async def stop(self) -> None:
        self._count_bytes()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._flushing is not None:
            with contextlib.suppress(Exception, LeaseLost):
                await self._flushing

    def event(self, message: str | None = None) -> TaskEvent:
        speed = self._speed()
        text = self.message if message is None else message
        return self._events.build(self.task, text, speed=speed, eta=self._eta(speed))

    def publish(self, message: str | None = None) -> None:
        if self._fence is not None and not self._fence.holds():
            return
        self._events.publish(self.event(message))
        self._last_event = self._clock()
        self._changed = False

    async def flush(self) -> None:
        """Write counters and changed segments now (copies: the job keeps mutating the originals)."""
        async with self._flush_lock:
            segments = [dataclasses.replace(s) for s in self._dirty.values()]
            self._dirty.clear()
            self._unflushed = False
            self._last_flush = self._clock()
            try:
                await self._store.save_progress(dataclasses.replace(self.task), segments)
            except BaseException:
                for s in segments:  # not written: try them again next time
                    self._dirty.setdefault(s.index, s)
                raise
            if segments:
                task = self.task
                done = {"segments": len(segments), "segments_done": task.segments_done, "bytes": task.bytes_downloaded}
                spans.event("segments written", done)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            now = self._clock()
            self._sample(now)
            self._count_bytes()
            if self._changed or now - self._last_event >= self._heartbeat:
                self.publish()
            if (self._dirty or self._unflushed) and now - self._last_flush >= self._flush_interval:
                if self._flushing is None or self._flushing.done():
                    self._flushing = asyncio.create_task(self._background_flush())

    async def _background_flush(self) -> None:
        try:
            await self.flush()
        except LeaseLost:
            return  # the run stops at its next step; nothing more is written for it
        except Exception:
            # Progress is re-sent next time; a state change flushes synchronously and surfaces its error.
            log.warning("progress flush failed; will retry", exc_info=True, extra={"task_id": self.task.id})

    def _count_bytes(self) -> None:
        if self._received > self._counted:
            self._metrics.bytes_received(self._received - self._counted)
            self._counted = self._received

    def _sample(self, now: float) -> None:
        self._samples.append((now, self._received))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW_SECONDS:
            self._samples.popleft()

    def _speed(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def _eta(self, speed: float) -> float:
        task = self.task
        if speed <= 0:
            return 0.0
        if task.bytes_total > 0:
            return max(0.0, (task.bytes_total - task.bytes_downloaded) / speed)
        if task.segments_total > 0 and task.segments_done > 0:
            left = task.segments_total - task.segments_done - task.segments_failed
            return max(0.0, left * (task.bytes_downloaded / task.segments_done) / speed)
        return 0.0
