"""The circuit breaker per host, the run's retry budget and the minimum transfer rate, on a hand-driven clock."""

from __future__ import annotations

import pytest

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.http.body import Pace
from download_server.engine.http.budget import RunRetries
from download_server.engine.http.circuit import Circuits, CircuitState, host_of


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _503() -> FetchError:
    return FetchError(ErrorType.HTTP, "HTTP 503 Service Unavailable", http_status=503, retryable=True)


def test_failures_in_a_row_open_the_circuit_and_a_probe_closes_it() -> None:
    clock = Clock()
    circuit = Circuits(threshold=3, cooldown=1.0, cooldown_max=4.0, clock=clock).for_url("https://cdn.example.com/a.ts")
    assert [circuit.failed(_503()) for _ in range(3)] == [None, None, CircuitState.OPEN]
    assert not circuit.admit()
    refusal = circuit.refusal()
    assert (refusal.retryable, refusal.http_status, refusal.retry_after) == (True, 503, 1.0)
    assert "cdn.example.com is failing every request (3 in a row, last: HTTP 503" in refusal.message

    clock.now += 1.0
    assert circuit.admit() and circuit.state is CircuitState.HALF_OPEN
    assert not circuit.admit()  # one probe at a time
    assert circuit.failed(_503()) is CircuitState.OPEN and circuit.remaining() == 2.0  # the cooldown doubles
    clock.now += 2.0
    assert circuit.admit()
    assert circuit.succeeded() is CircuitState.CLOSED and circuit.admit()


def test_a_success_between_failures_keeps_the_circuit_closed() -> None:
    circuit = Circuits(threshold=3, cooldown=1.0, cooldown_max=4.0).for_url("http://h:8080/x")
    for _ in range(10):
        circuit.failed(_503())
        circuit.failed(_503())
        circuit.succeeded()
    assert circuit.state is CircuitState.CLOSED and circuit.host == "h:8080"


def test_a_cancelled_probe_lets_the_next_request_probe() -> None:
    clock = Clock()
    circuit = Circuits(threshold=1, cooldown=1.0, cooldown_max=4.0, clock=clock).for_url("http://h/x")
    circuit.failed(_503())
    clock.now += 1.0
    assert circuit.admit()
    circuit.released()
    assert circuit.admit()


def test_hosts_have_their_own_circuits() -> None:
    circuits = Circuits(threshold=1, cooldown=1.0, cooldown_max=4.0)
    circuits.for_url("http://a.example/x").failed(_503())
    assert not circuits.for_url("http://a.example/y").admit()
    assert circuits.for_url("http://b.example/x").admit()
    assert host_of("https://A.example:8443/p?q") == "a.example:8443"


def test_the_budget_grows_with_successes_and_says_once_when_it_is_spent() -> None:
    notes: list[str] = []
    budget = RunRetries(floor=2, ratio=0.5, note=notes.append)
    assert [budget.take(), budget.take(), budget.take()] == [True, True, False]
    for _ in range(4):
        budget.succeeded()
    assert budget.allowance() == 4 and budget.take() and budget.take() and not budget.take()
    assert len(notes) == 1 and "retry budget is spent" in notes[0]


def test_no_retry_after_the_sweep_deadline() -> None:
    clock = Clock()
    budget = RunRetries(floor=100, ratio=1.0, clock=clock)
    budget.deadline = clock.now + 1.0
    assert budget.take()
    clock.now += 1.0
    assert not budget.take()


def test_a_transfer_slower_than_the_minimum_over_the_window_is_a_timeout() -> None:
    clock = Clock()
    pace = Pace(100.0, 10.0, clock)
    clock.now += 5
    pace.observe(10)  # within the first window: not judged yet
    clock.now += 5
    pace.observe(1500)  # 150 B/s over the window: fine, a new window starts
    clock.now += 10
    with pytest.raises(FetchError) as slow:
        pace.observe(1600)  # 10 B/s
    assert (slow.value.error_type, slow.value.retryable) == (ErrorType.TIMEOUT, True)
    assert "slower than 100 B/s over 10s" in slow.value.message
