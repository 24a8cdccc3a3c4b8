"""Retries with backoff: what may pass later is tried again after a jittered, capped, growing wait."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.http.budget import RUN_RETRIES, RunRetries
from download_server.engine.http.circuit import Circuit, CircuitRefusal, Circuits, CircuitState
from download_server.engine.http.errors import classify_exception
from download_server.engine.http.fetch_settings import FetchSettings

T = TypeVar("T")
log = logging.getLogger(__name__)


class Retrier:
    """Runs one attempt after another until one succeeds, fails for good, or max_attempts is spent.

    Every attempt passes its host's circuit breaker first, and every retry draws on the run's budget (when
    the caller runs inside a run). `sleep` and `jitter` are seams: tests record the waits instead of sitting
    through them.
    """

    def __init__(
        self,
        settings: FetchSettings,
        *,
        sleep: Callable[[float], Awaitable[None]],
        jitter: Callable[[], float],
        on_retry: Callable[[FetchError], None] | None = None,
        circuits: Circuits | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._jitter = jitter
        self._on_retry = on_retry
        self.circuits = circuits or Circuits(
            threshold=settings.circuit_failures,
            cooldown=settings.circuit_cooldown,
            cooldown_max=settings.circuit_cooldown_max,
        )

    async def run(self, url: str, attempt: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        """(the first successful result, the number of attempts it took); the last FetchError otherwise."""
        budget = RUN_RETRIES.get()
        circuit = self.circuits.for_url(url)
        sent = 0  # attempts that reached the origin: a request the open circuit held back is not one
        for number in range(1, self.settings.max_attempts + 1):
            try:
                return await self._once(circuit, attempt, budget), sent + 1
            except CircuitRefusal as exc:
                error: FetchError = exc
            except FetchError as exc:
                error, sent = exc, sent + 1
            if not self._may_retry(error, number, budget):
                error.attempts = sent
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

    def _may_retry(self, error: FetchError, number: int, budget: RunRetries | None) -> bool:
        if not error.retryable or number >= self.settings.max_attempts:
            return False
        return budget is None or budget.take()

    async def _once(self, circuit: Circuit, attempt: Callable[[], Awaitable[T]], budget: RunRetries | None) -> T:
        """One attempt through the host's breaker, its outcome recorded there (and in the run's budget)."""
        refused = budget.quota_refusal() if budget is not None else None
        if refused is not None:
            raise refused
        if not circuit.admit():
            raise circuit.refusal()
        try:
            result = await attempt()
        except FetchError as exc:
            error = exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = classify_exception(exc)
        except BaseException:
            circuit.released()
            raise
        else:
            _changed(circuit, circuit.succeeded(), budget)
            if budget is not None:
                budget.succeeded()
            return result
        if error.error_type is ErrorType.URL_REFUSED:
            circuit.released()  # refused before anything was sent: says nothing about the host
        elif error.retryable:
            _changed(circuit, circuit.failed(error), budget)
        else:
            _changed(circuit, circuit.succeeded(), budget)  # a 404 or a wrong type: the host does answer
        raise error

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        s = self.settings
        ceiling = min(s.backoff_max, s.backoff_base * 2.0 ** (attempt - 1))
        # "Equal jitter": never less than half the step, so a retry storm still spreads out.
        delay = ceiling / 2 + self._jitter() * ceiling / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, s.retry_after_max))
        return delay


def _changed(circuit: Circuit, state: CircuitState | None, budget: RunRetries | None) -> None:
    """A breaker that opened or closed is said in the log and in the events of the run that saw it."""
    if state is None:
        return
    message = circuit.describe()
    log.warning("circuit %s: %s", state.value, message)
    if budget is not None:
        budget.note(message)
