"""The thread pool bcrypt runs in: apart from the database pool, so hashing never queues ahead of SQL."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def default_hash_workers() -> int:
    """One thread fewer than CPUs (at least one): bcrypt releases the GIL and would otherwise take every core
    from the event loop during a login storm; the cost is login throughput, which bcrypt bounds anyway."""
    return max(1, (os.cpu_count() or 2) - 1)


class HashingPool:
    """A BlockingRunner for password hashing; the logins it cannot take at once wait their turn in it."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bcrypt")

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()  # log lines from the pool keep the request id
        return await loop.run_in_executor(self._executor, functools.partial(ctx.run, fn, *args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
