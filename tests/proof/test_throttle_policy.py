"""LoginThrottle on a fake clock: thresholds, doubling capped delays, window expiry, reset on success, memory."""

from __future__ import annotations

import tracemalloc

import pytest

from auth_server.throttle import LOGIN_THROTTLED, LoginThrottle, ThrottlePolicy
from mediadl_common.errors import ResourceExhausted
from tests.proof.statuses import FakeClock

POLICY = ThrottlePolicy(
    max_failures=3, peer_max_failures=10, window_seconds=600, base_delay_seconds=1, max_delay_seconds=8
)


def fail(throttle: LoginThrottle, account: str = "ada@example.com", peer: str = "10.0.0.1") -> None:
    throttle.begin(account, peer).failed()


def wait_of(throttle: LoginThrottle, account: str = "ada@example.com", peer: str = "10.0.0.1") -> float:
    with pytest.raises(ResourceExhausted) as refused:
        throttle.begin(account, peer)
    assert refused.value.reason == LOGIN_THROTTLED
    assert refused.value.retry_after is not None
    return refused.value.retry_after


def test_delays_start_at_the_threshold_double_and_stop_at_the_cap() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(POLICY, clock=clock)
    for _ in range(3):
        fail(throttle)
    waits = []
    for _ in range(6):
        waits.append(wait_of(throttle))
        clock.advance(waits[-1])
        fail(throttle)  # admitted exactly when the wait is over, and wrong again
    assert waits == [1, 2, 4, 8, 8, 8]


def test_a_refused_attempt_does_not_lengthen_the_wait() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(POLICY, clock=clock)
    for _ in range(3):
        fail(throttle)
    for _ in range(50):
        wait_of(throttle)  # hammering while blocked
    clock.advance(1)
    throttle.begin("ada@example.com", "10.0.0.1").succeeded()


def test_success_resets_the_account() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(POLICY, clock=clock)
    for _ in range(2):
        fail(throttle)
    throttle.begin("ada@example.com", "10.0.0.1").succeeded()
    for _ in range(3):  # a full allowance again, not one
        fail(throttle)
    assert wait_of(throttle) == 1


def test_failures_leave_the_window() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(POLICY, clock=clock)
    for _ in range(3):
        fail(throttle)
    clock.advance(599)  # the wait is long over, but the three failures are still inside the window
    fail(throttle)
    assert wait_of(throttle) == 2  # so this is the fourth failure, not the first
    clock.advance(600)
    for _ in range(3):  # everything expired: a full allowance again
        fail(throttle)
    assert wait_of(throttle) == 1


def test_the_client_is_counted_across_accounts_and_success_does_not_launder_it() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(POLICY, clock=clock)
    for i in range(9):
        fail(throttle, account=f"victim{i}@example.com")
        # The attacker's own account, in between: its success must not wipe the client's failures.
        throttle.begin("attacker@example.com", "10.0.0.1").succeeded()
    fail(throttle, account="victim9@example.com")
    assert wait_of(throttle, account="fresh@example.com") == 1
    # Another client is not affected.
    throttle.begin("fresh@example.com", "10.0.0.2").succeeded()


def test_a_burst_of_parallel_guesses_is_cut_at_the_threshold() -> None:
    throttle = LoginThrottle(POLICY, clock=FakeClock())
    admitted = []
    refusals = 0
    for _ in range(20):  # none settled yet: all "in flight" together
        try:
            admitted.append(throttle.begin("ada@example.com", "10.0.0.1"))
        except ResourceExhausted:
            refusals += 1
    assert len(admitted) == 3 and refusals == 17


def test_withdrawn_attempts_do_not_count() -> None:
    throttle = LoginThrottle(POLICY, clock=FakeClock())
    for _ in range(10):
        throttle.begin("ada@example.com", "10.0.0.1").withdrawn()  # e.g. database down
    fail(throttle)
    throttle.begin("ada@example.com", "10.0.0.1").failed()


def test_zero_turns_a_scope_off() -> None:
    throttle = LoginThrottle(ThrottlePolicy(0, 0, 0, 0), clock=FakeClock())
    for _ in range(100):
        fail(throttle)
    assert throttle.tracked_keys() == 0


def test_memory_is_bounded_when_emails_are_sprayed() -> None:
    clock = FakeClock()
    policy = ThrottlePolicy(
        max_failures=3, peer_max_failures=0, account_max_failures=0, window_seconds=60, max_tracked_keys=100
    )
    throttle = LoginThrottle(policy, clock=clock)
    for i in range(1000):
        fail(throttle, account=f"made-up-{i}@example.com")
    assert throttle.tracked_keys() == 100
    clock.advance(61)
    for i in range(30):  # each attempt sweeps a few expired keys
        fail(throttle, account=f"later-{i}@example.com")
    assert throttle.tracked_keys() < 100


def test_observer_hears_each_refusal_by_scope() -> None:
    heard: list[str] = []
    throttle = LoginThrottle(POLICY, clock=FakeClock(), observe=heard.append)
    for _ in range(3):
        fail(throttle)
    wait_of(throttle)
    for i in range(7):
        fail(throttle, account=f"other{i}@example.com")
    wait_of(throttle, account="new@example.com")
    assert heard == ["pair", "peer"]


def test_huge_made_up_emails_are_not_kept() -> None:
    # A Login request may carry an email up to the 1 MiB request limit; the throttle must keep a digest.
    throttle = LoginThrottle(ThrottlePolicy(peer_max_failures=0, account_max_failures=0), clock=FakeClock())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(200):
            fail(throttle, account=f"{i}{'x' * 100_000}@example.com")  # 20 MB of emails in all
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert throttle.tracked_keys() == 200
    assert kept < 1_000_000
