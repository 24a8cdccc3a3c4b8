"""RunRetries: one run's retry budget, shared by every fetch of the run through a context variable."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.http.circuit import CircuitRefusal


class RunRetries:
    """Retries a run may still spend: `floor` plus `ratio` per successful attempt.

    When most attempts succeed the budget grows with them, so a stubborn segment may take more attempts
    (the final sweep); when the origin is down for everyone nothing succeeds, the floor is spent quickly and
    the run stops early instead of spending every segment's attempts. `deadline` (monotonic seconds) bounds
    the final sweep: no retry starts after it.
    """

    def __init__(
        self,
        *,
        floor: int,
        ratio: float,
        note: Callable[[str], None] = lambda _message: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.floor, self.ratio = floor, ratio
        self.successes = 0
        self.retries = 0
        self.deadline: float | None = None
        self.note = note
        self._clock = clock
        self._told_spent = False
        # DOWNLOAD_USER_QUOTA_BYTES: how many more bytes the run may store, and what it has stored so far.
        self.quota_left: int | None = None
        self.stored: Callable[[], int] = lambda: 0

    def quota_refusal(self) -> FetchError | None:
        """The error of a request not sent because the user's storage quota is used up (None: go ahead)."""
        if self.quota_left is None or self.stored() < self.quota_left:
            return None
        return CircuitRefusal(
            ErrorType.QUOTA_EXCEEDED, "not fetched: the user's storage quota (DOWNLOAD_USER_QUOTA_BYTES) is used up"
        )

    def succeeded(self) -> None:
        self.successes += 1

    def allowance(self) -> int:
        return self.floor + int(self.ratio * self.successes)

    def spent(self) -> bool:
        return self.retries >= self.allowance() or self.past_deadline()

    def past_deadline(self) -> bool:
        return self.deadline is not None and self._clock() >= self.deadline

    def take(self) -> bool:
        """Spend one retry if any is left; False (said once in the run's events) when none is."""
        if self.spent():
            if not self._told_spent and not self.past_deadline():
                self._told_spent = True
                self.note(
                    f"the run's retry budget is spent ({self.retries} retries for {self.successes} successful "
                    "requests): failing requests are not retried any more"
                )
            return False
        self.retries += 1
        return True


# Set by the run around its job: every fetch the job makes (in any task it starts) draws on this budget.
RUN_RETRIES: ContextVar[RunRetries | None] = ContextVar("mediadl_run_retries", default=None)
