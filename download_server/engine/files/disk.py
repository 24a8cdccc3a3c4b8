"""DiskWriter: the few threads that do the engine's blocking file work (write, hash, rename) off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class DiskWriter:
    """Runs blocking callables on at most `threads` dedicated threads and resolves asyncio futures with the result.

    Why not loop.run_in_executor(None, ...): a segment download ends in one short blocking step (write,
    hash, rename), hundreds of times a second on a fast link. Through the default pool each step paid for
    a concurrent.futures.Future, its wrapping, and up to cpu+4 threads taking turns at the GIL with the
    event loop; profiles showed the loop itself stalling on those hand-offs. Two threads keep disk work
    overlapped with the network while bounding that contention. Threads start on demand and end after
    `idle_seconds` without work, so a writer needs no closing (and tests with a loop each leak no threads).
    """

    def __init__(self, threads: int = 2, idle_seconds: float = 5.0) -> None:
        if threads < 1:
            raise ValueError("a DiskWriter needs at least one thread")
        self._max_threads = threads
        self._idle_seconds = idle_seconds
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._waiting = 0  # threads blocked on the queue, ready to take a job

    @property
    def thread_count(self) -> int:
        return self._threads

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Schedule `fn` on a writer thread; the future (of the running loop) gets its result or exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, fn))
        with self._lock:
            # Checked after the put: a thread that saw an empty queue has already left the count.
            if self._waiting == 0 and self._threads < self._max_threads:
                self._threads += 1
                threading.Thread(target=self._serve, name="disk-writer", daemon=True).start()
        return future

    def _serve(self) -> None:
        while True:
            with self._lock:
                self._waiting += 1
            try:
                loop, future, fn = self._jobs.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    self._waiting -= 1
                    if self._jobs.empty():
                        self._threads -= 1
                        return
                continue
            with self._lock:
                self._waiting -= 1
            try:
                result = fn()
            except BaseException as exc:  # handed to the awaiting coroutine, which decides what it means
                _deliver(loop, future, None, exc)
            else:
                _deliver(loop, future, result, None)


def _deliver(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    def settle() -> None:
        if future.done():  # cancelled by its awaiter meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    # A loop that closed while the job ran has nobody left to tell.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle)
