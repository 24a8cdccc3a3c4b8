"""The thread pool bcrypt runs in: apart from the database pool, bounded, and fair between clients.

A flood of Register or Login calls from one client must not delay anyone else's login by more than a
second. So each client has a lane: at most `per_client` of its hashes are in the pool at once, at most
`client_queue` more wait in its lane, and the whole pool holds at most `queue_limit`; beyond that the call
is refused at once with RESOURCE_EXHAUSTED and a RetryInfo (how long the queue takes to drain). Another
client's login thus waits behind at most `per_client` hashes of each busy client, never behind a flood.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mediadl_common.errors import ResourceExhausted

T = TypeVar("T")
SERVER_BUSY = "SERVER_BUSY"


def default_hash_workers() -> int:
    """One thread fewer than CPUs (at least one): bcrypt releases the GIL and would otherwise take every core
    from the event loop during a login storm; the cost is login throughput, which bcrypt bounds anyway."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class HashQueueLimits:
    per_client: int = 2
    client_queue: int = 4
    queue_limit: int = 32


@dataclass
class _Lane:
    slots: asyncio.Semaphore
    holders: int = 0  # running or waiting in this lane


@dataclass
class _Stats:
    pending: int = 0
    # Seconds one hash takes, smoothed; starts at bcrypt cost 12's on a small machine until measured.
    seconds_per_job: float = 0.25
    lanes: dict[str, _Lane] = field(default_factory=dict)


class HashingPool:
    """A BlockingRunner for password hashing; `run_for(client, ...)` puts the job in that client's lane."""

    def __init__(self, workers: int, limits: HashQueueLimits | None = None) -> None:
        self.workers = workers
        self.limits = limits or HashQueueLimits()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bcrypt")
        self._stats = _Stats()

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """A job of no particular client (start-up work): the anonymous lane."""
        return await self.run_for("", fn, *args, **kwargs)

    async def run_for(self, client: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        lane = self._admit(client)
        try:
            async with lane.slots:
                return await self._execute(fn, *args, **kwargs)
        finally:
            lane.holders -= 1
            self._stats.pending -= 1
            if lane.holders == 0:
                del self._stats.lanes[client]

    def queued(self) -> int:
        return self._stats.pending

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _admit(self, client: str) -> _Lane:
        stats, limits = self._stats, self.limits
        lane = stats.lanes.get(client)
        lane_full = lane is not None and lane.holders >= limits.per_client + limits.client_queue
        if lane_full or stats.pending >= limits.queue_limit:
            drain = stats.pending * stats.seconds_per_job / self.workers
            retry_after = max(0.5, math.ceil(drain * 10) / 10)
            raise ResourceExhausted(
                f"the server is busy checking passwords: try again in {retry_after:g} s",
                reason=SERVER_BUSY,
                retry_after=retry_after,
            )
        if lane is None:
            lane = stats.lanes[client] = _Lane(asyncio.Semaphore(limits.per_client))
        lane.holders += 1
        stats.pending += 1
        return lane

    async def _execute(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()  # log lines from the pool keep the request id
        started = time.perf_counter()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(ctx.run, fn, *args, **kwargs))
        finally:
            # Includes time queued in the executor, which only makes the retry hint more cautious.
            elapsed = time.perf_counter() - started
            self._stats.seconds_per_job = 0.8 * self._stats.seconds_per_job + 0.2 * elapsed
