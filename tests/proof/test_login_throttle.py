"""Login brute force against a real auth server: slowed down per account and per client, never for ever,
identical for unknown emails, counted in the server's metrics and logged without the password."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import grpc
import pytest

from auth_server.bootstrap import start_auth_server
from auth_server.throttle import LOGIN_THROTTLED
from mediadl.auth.v1 import auth_pb2, auth_pb2_grpc
from mediadl_common.config import ConfigError
from tests.auth.helpers import PASSWORD, AuthClient, auth_settings
from tests.proof.statuses import FakeClock, Refusal, refused

WRONG = "not the password 123"
THROTTLE_ENV = {
    "AUTH_LOGIN_MAX_FAILURES": "3",
    "AUTH_LOGIN_PEER_MAX_FAILURES": "50",
    "AUTH_LOGIN_WINDOW_SECONDS": "600",
    "AUTH_LOGIN_BASE_DELAY_SECONDS": "2",
    "AUTH_LOGIN_MAX_DELAY_SECONDS": "60",
}


@asynccontextmanager
async def throttled_server(database_url: str, clock: FakeClock, **env: str) -> AsyncIterator[AuthClient]:
    settings = auth_settings(database_url, **{**THROTTLE_ENV, **env})
    running = await start_auth_server(settings, throttle_clock=clock)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield AuthClient(running, settings, auth_pb2_grpc.AuthServiceStub(channel), channel)  # type: ignore[no-untyped-call]
    finally:
        await channel.close()
        await running.stop(0)


def login(auth: AuthClient, email: str, password: str) -> grpc.aio.UnaryUnaryCall[object, object]:
    call: grpc.aio.UnaryUnaryCall[object, object] = auth.stub.Login(
        auth_pb2.LoginRequest(email=email, password=password)
    )
    return call


def throttled_count(auth: AuthClient, scope: str) -> float:
    value = auth.running.metrics.registry.get_sample_value("mediadl_auth_login_throttled_total", {"scope": scope})
    return value or 0.0


async def test_repeated_failures_for_one_account_are_slowed_down_and_a_success_resets(database_url: str) -> None:
    clock = FakeClock()
    async with throttled_server(database_url, clock) as auth:
        user = await auth.register()
        for _ in range(3):
            assert (await refused(login(auth, user.email, WRONG))).code == grpc.StatusCode.UNAUTHENTICATED
        # Now even the right password waits: otherwise the throttle would be an oracle for it.
        first = await refused(login(auth, user.email, PASSWORD))
        assert first == Refusal(
            grpc.StatusCode.RESOURCE_EXHAUSTED, "too many failed logins: try again in 2 s", LOGIN_THROTTLED, 2.0
        )
        clock.advance(2)
        assert (await refused(login(auth, user.email.upper(), WRONG))).code == grpc.StatusCode.UNAUTHENTICATED
        assert (await refused(login(auth, user.email, PASSWORD))).retry_after == 4.0  # doubled
        clock.advance(4)
        await auth.login(user.email)  # the real user gets in after the wait ...
        for _ in range(3):  # ... and has a full allowance again
            assert (await refused(login(auth, user.email, WRONG))).code == grpc.StatusCode.UNAUTHENTICATED
        assert throttled_count(auth, "pair") == 2


async def test_the_window_expires(make_database_url: Callable[[str], str]) -> None:
    clock = FakeClock()
    async with throttled_server(make_database_url("sqlite"), clock) as auth:
        user = await auth.register()
        for _ in range(3):
            await refused(login(auth, user.email, WRONG))
        waits = []
        for _ in range(3):  # an attacker who waits each time gets one guess per doubling delay
            wait = (await refused(login(auth, user.email, WRONG))).retry_after
            assert wait is not None
            waits.append(wait)
            clock.advance(wait)
            await refused(login(auth, user.email, WRONG))
        assert waits == [2.0, 4.0, 8.0]
        clock.advance(600)  # every failure has left the 600 s window: no wait and no history
        for _ in range(3):
            assert (await refused(login(auth, user.email, WRONG))).code == grpc.StatusCode.UNAUTHENTICATED
        assert (await refused(login(auth, user.email, PASSWORD))).retry_after == 2.0
        clock.advance(2)
        await auth.login(user.email)


async def test_an_unknown_email_is_throttled_exactly_like_a_real_one(database_url: str) -> None:
    clock = FakeClock()
    async with throttled_server(database_url, clock) as auth:
        user = await auth.register()

        async def story(email: str) -> list[Refusal]:
            seen = [await refused(login(auth, email, WRONG)) for _ in range(4)]
            clock.advance(2)
            seen.append(await refused(login(auth, email, WRONG)))
            seen.append(await refused(login(auth, email, WRONG)))
            return seen

        real, unknown = await story(user.email), await story("nobody-here@example.com")
        assert real == unknown
        assert [r.code for r in real] == [grpc.StatusCode.UNAUTHENTICATED] * 3 + [
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ]


async def test_one_client_guessing_across_accounts_is_slowed_down(make_database_url: Callable[[str], str]) -> None:
    clock = FakeClock()
    env = {"AUTH_LOGIN_MAX_FAILURES": "100", "AUTH_LOGIN_PEER_MAX_FAILURES": "5"}
    async with throttled_server(make_database_url("sqlite"), clock, **env) as auth:
        user = await auth.register()
        for i in range(5):
            await refused(login(auth, f"guess{i}@example.com", WRONG))
        blocked = await refused(login(auth, user.email, PASSWORD))
        assert (blocked.code, blocked.reason, blocked.retry_after) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            LOGIN_THROTTLED,
            2.0,
        )
        assert throttled_count(auth, "peer") == 1
        clock.advance(2)
        await auth.login(user.email)


async def test_throttling_is_logged_at_warning_without_the_password(
    make_database_url: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    async with throttled_server(make_database_url("sqlite"), clock) as auth:
        for _ in range(3):
            await refused(login(auth, "target@example.com", WRONG))
        await refused(login(auth, "target@example.com", PASSWORD))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("login throttled: pair 'target@example.com'" in r.getMessage() for r in warnings)
    assert any(LOGIN_THROTTLED in r.getMessage() for r in warnings)  # the refusal itself
    logged = "\n".join([caplog.text, *(repr(r.__dict__) for r in caplog.records)])
    assert WRONG not in logged and PASSWORD not in logged


async def test_config_errors_are_one_line(make_database_url: Callable[[str], str]) -> None:
    url = make_database_url("sqlite")
    with pytest.raises(ConfigError, match="AUTH_LOGIN_MAX_DELAY_SECONDS"):
        auth_settings(url, AUTH_LOGIN_BASE_DELAY_SECONDS="10", AUTH_LOGIN_MAX_DELAY_SECONDS="5")
    with pytest.raises(ConfigError, match="AUTH_LOGIN_MAX_FAILURES must be at least 0"):
        auth_settings(url, AUTH_LOGIN_MAX_FAILURES="-1")
