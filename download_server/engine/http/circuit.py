"""Circuit breakers per origin host: an origin failing every request is left alone, probed now and then."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from download_server.engine.failures import ErrorType, FetchError


class CircuitRefusal(FetchError):
    """A request that was never sent (its host's circuit is open, or the user's quota is used up): not an
    attempt, and not a failure of the host itself."""


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass
class Circuit:
    """One host's breaker: `threshold` failures in a row open it; after a cooldown (growing with each failed
    probe) one request probes it; the probe's success closes it again."""

    host: str
    threshold: int
    cooldown: float
    cooldown_max: float
    clock: Callable[[], float] = time.monotonic
    state: CircuitState = CircuitState.CLOSED
    failures_in_row: int = 0
    opened_at: float = 0.0
    current_cooldown: float = 0.0
    probing: bool = False
    last_error: FetchError | None = field(default=None, repr=False)

    def admit(self) -> bool:
        """True if a request may go out now (a closed circuit, or this request is the half-open probe)."""
        if self.state is CircuitState.CLOSED:
            return True
        if self.probing or self.remaining() > 0:
            return False
        self.state, self.probing = CircuitState.HALF_OPEN, True
        return True

    def remaining(self) -> float:
        """Seconds until the next probe may go (0 when closed or due)."""
        if self.state is CircuitState.CLOSED:
            return 0.0
        return max(0.0, self.opened_at + self.current_cooldown - self.clock())

    def succeeded(self) -> CircuitState | None:
        """Record an answer from the host; the new state if it changed."""
        self.failures_in_row, self.probing = 0, False
        if self.state is CircuitState.CLOSED:
            return None
        self.state, self.current_cooldown = CircuitState.CLOSED, 0.0
        return CircuitState.CLOSED

    def failed(self, error: FetchError) -> CircuitState | None:
        """Record a failure that may be the host's (5xx, 429, resets, timeouts); the new state if it changed."""
        self.failures_in_row += 1
        self.last_error = error
        was_probe, self.probing = self.probing, False
        if self.state is CircuitState.HALF_OPEN or was_probe:
            self._open(min(self.cooldown_max, max(self.cooldown, self.current_cooldown * 2)))
            return CircuitState.OPEN
        if self.state is CircuitState.CLOSED and self.failures_in_row >= self.threshold:
            self._open(self.cooldown)
            return CircuitState.OPEN
        return None

    def released(self) -> None:
        """The probe ended without an answer (cancelled): let the next request probe."""
        if self.probing:
            self.probing = False
            self.state = CircuitState.OPEN

    def refusal(self) -> CircuitRefusal:
        """The error of a request not sent because the circuit is open (retryable once it may probe)."""
        last = self.last_error
        cause = last.message if last is not None else "failures"
        return CircuitRefusal(
            last.error_type if last is not None else ErrorType.CONNECTION,
            f"not sent: {self.host} is failing every request ({self.failures_in_row} in a row, last: {cause}); "
            f"next try in {self.remaining():.1f}s",
            http_status=last.http_status if last is not None else 0,
            retryable=True,
            retry_after=self.remaining(),
        )

    def describe(self) -> str:
        if self.state is CircuitState.CLOSED:
            return f"{self.host} answers again (circuit closed)"
        last = self.last_error.message if self.last_error is not None else "failures"
        return (
            f"{self.host} is failing every request (circuit open after {self.failures_in_row} failures in a row, "
            f"last: {last}); probing again in {self.remaining():.1f}s"
        )

    def _open(self, cooldown: float) -> None:
        self.state, self.opened_at, self.current_cooldown = CircuitState.OPEN, self.clock(), cooldown


def host_of(url: str) -> str:
    """The breaker's key: host and port, as a user would name the origin."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


class Circuits:
    """Every host's breaker in this process: an origin down for one task is down for all of them."""

    def __init__(
        self, *, threshold: int, cooldown: float, cooldown_max: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold, self._cooldown, self._cooldown_max, self._clock = threshold, cooldown, cooldown_max, clock
        self._circuits: dict[str, Circuit] = {}

    def for_url(self, url: str) -> Circuit:
        host = host_of(url)
        circuit = self._circuits.get(host)
        if circuit is None:
            if len(self._circuits) > 10_000:
                # Hosts come from users' URLs: forget the healthy ones rather than grow without bound.
                self._circuits = {h: c for h, c in self._circuits.items() if c.state is not CircuitState.CLOSED}
            circuit = Circuit(host, self._threshold, self._cooldown, self._cooldown_max, self._clock)
            self._circuits[host] = circuit
        return circuit
