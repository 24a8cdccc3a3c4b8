"""Retries with backoff: what may pass later is tried again after a jittered, capped, growing wait."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp

from download_server.engine.failures import FetchError
from download_server.engine.http.errors import classify_exception
from download_server.engine.http.fetch_settings import FetchSettings

T = TypeVar("T")
log = logging.getLogger(__name__)


class Retrier:
    """Runs one attempt after another until one succeeds, fails for good, or max_attempts is spent.

    `sleep` and `jitter` are seams: tests record the waits instead of sitting through them.
    """

    def __init__(
        self,
        settings: FetchSettings,
        *,
        sleep: Callable[[float], Awaitable[None]],
        jitter: Callable[[], float],
        on_retry: Callable[[FetchError], None] | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._jitter = jitter
        self._on_retry = on_retry

    async def run(self, url: str, attempt: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        """(the first successful result, the number of attempts it took); the last FetchError otherwise."""
        for number in range(1, self.settings.max_attempts + 1):
            try:
                return await attempt(), number
            except FetchError as exc:
                error = exc
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = classify_exception(exc)
            if not error.retryable or number == self.settings.max_attempts:
                error.attempts = number
                raise error
            if self._on_retry is not None:
                self._on_retry(error)
            delay = self.backoff(number, error.retry_after)
            log.info(
                "retrying %s in %.2fs (attempt %d of %d failed: %s, HTTP %d)",
                url,
                delay,
                number,
                self.settings.max_attempts,
                error.error_type.value,
                error.http_status,
            )
            await self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        s = self.settings
        ceiling = min(s.backoff_max, s.backoff_base * 2.0 ** (attempt - 1))
        # "Equal jitter": never less than half the step, so a retry storm still spreads out.
        delay = ceiling / 2 + self._jitter() * ceiling / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, s.retry_after_max))
        return delay
