"""Login brute-force throttle: after too many failures per (account, client), per client or per account, wait.

Three scopes, so that no one can lock a real user out: the (account, client) pair has a low threshold (one
address guessing one password), the client a middle one (one address spraying many accounts), and the account
across all clients a much higher one (many addresses guessing one account). An attacker at one address thus
slows down only itself; the real user logging in from elsewhere is not affected until a botnet-sized number
of failures. In memory, per process (N replicas give an attacker N times the budget). Counts never depend on
whether the email exists, and a refused attempt is answered before any lookup.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mediadl_common.errors import ResourceExhausted

log = logging.getLogger(__name__)

LOGIN_THROTTLED = "LOGIN_THROTTLED"
REGISTER_THROTTLED = "REGISTER_THROTTLED"
PAIR, PEER, ACCOUNT, REGISTER = "pair", "peer", "account", "register"


@dataclass(frozen=True)
class ThrottlePolicy:
    """After `max_failures` failures of one (account, client) pair within `window_seconds` (or
    `peer_max_failures` of one client, or `account_max_failures` of one account from all clients), each further
    attempt must wait, doubling from `base_delay_seconds` up to `max_delay_seconds` after the last failure.
    `register_max_per_client` counts every Register of one client. 0 turns a scope off."""

    max_failures: int = 5
    peer_max_failures: int = 50
    account_max_failures: int = 100
    register_max_per_client: int = 20
    window_seconds: float = 900.0
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 300.0
    # Bounds memory when an attacker sprays made-up emails: the least recently touched keys go first.
    max_tracked_keys: int = 100_000

    def delay(self, failures: int, threshold: int) -> float:
        excess = failures - threshold
        if threshold <= 0 or excess < 0:
            return 0.0
        return min(self.max_delay_seconds, self.base_delay_seconds * math.pow(2, min(excess, 60)))


class _Failures:
    """Failure times of one key within the window (a few dozen at most: the delays bound the rate)."""

    __slots__ = ("times",)

    def __init__(self) -> None:
        self.times: deque[float] = deque()

    def prune(self, now: float, window: float) -> None:
        while self.times and now - self.times[0] >= window:
            self.times.popleft()


class _Scope:
    def __init__(self, name: str, threshold: int, policy: ThrottlePolicy) -> None:
        self.name = name
        self.threshold = threshold
        self._policy = policy
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` may try again (0: now)."""
        failures = self._keys.get(key)
        if failures is None or self.threshold <= 0:
            return 0.0
        failures.prune(now, self._policy.window_seconds)
        if not failures.times:
            del self._keys[key]
            return 0.0
        allowed_at = failures.times[-1] + self._policy.delay(len(failures.times), self.threshold)
        return max(0.0, allowed_at - now)

    def record(self, key: str, now: float) -> int:
        """Count a failure (made before the password is checked: see LoginThrottle.begin); returns the count."""
        if self.threshold <= 0 or not key:
            return 0
        failures = self._keys.pop(key, None) or _Failures()
        self._keys[key] = failures  # most recently touched last
        failures.times.append(now)
        while len(self._keys) > self._policy.max_tracked_keys:
            self._keys.popitem(last=False)
        return len(failures.times)

    def forget_one(self, key: str, at: float) -> None:
        failures = self._keys.get(key)
        if failures is not None and at in failures.times:
            failures.times.remove(at)

    def clear(self, key: str) -> None:
        self._keys.pop(key, None)

    def sweep(self, now: float, limit: int = 4) -> None:
        """Drop up to `limit` keys whose failures all left the window (the least recently touched come first)."""
        for _ in range(limit):
            if not self._keys:
                return
            key, failures = next(iter(self._keys.items()))
            failures.prune(now, self._policy.window_seconds)
            if failures.times:
                return
            del self._keys[key]

    def tracked(self) -> int:
        return len(self._keys)


class LoginThrottle:
    """Decides whether a login may be tried now; `observe` hears the scope of each refusal."""

    def __init__(
        self,
        policy: ThrottlePolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._observe = observe or (lambda _scope: None)
        self._pair = _Scope(PAIR, policy.max_failures, policy)
        self._peer = _Scope(PEER, policy.peer_max_failures, policy)
        self._account = _Scope(ACCOUNT, policy.account_max_failures, policy)
        self._register = _Scope(REGISTER, policy.register_max_per_client, policy)

    def begin(self, account: str, peer: str) -> LoginAttempt:
        """Refuse with ResourceExhausted while any key must wait, else start counting this attempt.

        The attempt counts as a failure from the start, so a burst of parallel guesses cannot all pass the
        check before the first wrong password is recorded; success or a non-credential error takes it back.
        """
        now = self._clock()
        # Emails are unchecked here and may be up to the request size: keep a fixed-size digest, not the text.
        account_key = _digest(account)
        keys = ((self._pair, f"{account_key}|{peer}"), (self._peer, peer), (self._account, account_key))
        self._refuse_while_waiting(keys, now, "too many failed logins", LOGIN_THROTTLED)
        counts = tuple(scope.record(key, now) for scope, key in keys)
        return LoginAttempt(self, keys, now, counts, shown=account[:100])

    def admit_registration(self, peer: str) -> None:
        """Count a Register of `peer`, or refuse it while that client must wait (every Register counts)."""
        now = self._clock()
        self._refuse_while_waiting(((self._register, peer),), now, "too many registrations", REGISTER_THROTTLED)
        self._register.record(peer, now)

    def tracked_keys(self) -> int:
        return sum(scope.tracked() for scope in (self._pair, self._peer, self._account, self._register))

    def _refuse_while_waiting(self, keys: Sequence[tuple[_Scope, str]], now: float, what: str, reason: str) -> None:
        # A little housekeeping per attempt keeps memory proportional to recent failures, with no timer task.
        for scope, _ in keys:
            scope.sweep(now)
        waits = [(scope.wait(key, now), scope.name) for scope, key in keys]
        wait, scope_name = max(waits)
        if wait > 0:
            self._observe(scope_name)
            retry_after = math.ceil(wait * 10) / 10
            # One message whatever the scope or whether the account exists.
            raise ResourceExhausted(f"{what}: try again in {retry_after:g} s", reason=reason, retry_after=retry_after)

    def _failed(self, attempt: LoginAttempt) -> None:
        for (scope, key), count in zip(attempt.keys, attempt.counts, strict=True):
            if scope.threshold > 0 and count >= scope.threshold:
                log.warning(
                    "login throttled: %s %r has %d failed login(s) in %.0f s; next attempt allowed in %.1f s",
                    scope.name,
                    attempt.shown if scope is not self._peer else key,
                    count,
                    self.policy.window_seconds,
                    self.policy.delay(count, scope.threshold),
                    extra={"reason": LOGIN_THROTTLED},
                )

    def _succeeded(self, attempt: LoginAttempt) -> None:
        # The real user got in: their account starts afresh. The client's count only loses this attempt,
        # so an attacker cannot launder a peer's failures by logging in to an account of their own.
        (pair, pair_key), (peer, peer_key), (account, account_key) = attempt.keys
        pair.clear(pair_key)
        account.clear(account_key)
        peer.forget_one(peer_key, attempt.started)

    def _withdrawn(self, attempt: LoginAttempt) -> None:
        for scope, key in attempt.keys:
            scope.forget_one(key, attempt.started)


def _digest(account: str) -> str:
    return "" if not account else hashlib.blake2b(account.encode("utf-8", "replace"), digest_size=16).hexdigest()


class LoginAttempt:
    """One admitted attempt; exactly one of failed / succeeded / withdrawn settles it."""

    def __init__(
        self,
        throttle: LoginThrottle,
        keys: tuple[tuple[_Scope, str], ...],
        started: float,
        counts: tuple[int, ...],
        shown: str,
    ) -> None:
        self._throttle = throttle
        self.keys = keys  # (pair, peer, account) scopes with their keys
        self.shown = shown  # the email as logged
        self.started = started
        self.counts = counts

    def failed(self) -> None:
        """Wrong password or unknown account: the attempt stays counted."""
        self._throttle._failed(self)

    def succeeded(self) -> None:
        self._throttle._succeeded(self)

    def withdrawn(self) -> None:
        """Neither (database down, inactive account, server busy): the attempt does not count."""
        self._throttle._withdrawn(self)
