"""Logins no one can lock (issue 16): the scenarios that locked real users out, now showing them logging in.

Before: six wrong guesses from any address locked a chosen account against its correct password everywhere;
42 failures through the dashboard (one peer to the auth server) locked every dashboard user out, and one
failure every 300 s kept them out; ChangePassword allowed unlimited guesses of the current password.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from auth_server.throttle import LOGIN_THROTTLED, REGISTER_THROTTLED
from mediadl.auth.v1 import auth_pb2
from tests.auth.helpers import PASSWORD, AuthClient, bearer
from tests.proof.statuses import FakeClock, refused
from tests.proof.test_login_throttle import throttled_server

WRONG = "not the password 123"
# The test process is the dashboard: 127.0.0.1 is trusted to name the browser in x-forwarded-for.
PROXY_ENV = {"AUTH_TRUSTED_PROXIES": "127.0.0.1/32, ::1", "AUTH_LOGIN_MAX_DELAY_SECONDS": "300"}


def login_from(auth: AuthClient, address: str, email: str, password: str) -> grpc.aio.UnaryUnaryCall[object, object]:
    call: grpc.aio.UnaryUnaryCall[object, object] = auth.stub.Login(
        auth_pb2.LoginRequest(email=email, password=password), metadata=(("x-forwarded-for", address),)
    )
    return call


async def test_an_attacker_at_one_address_cannot_lock_the_victim_out_elsewhere(
    make_database_url: Callable[[str], str],
) -> None:
    clock = FakeClock()
    async with throttled_server(make_database_url("sqlite"), clock, **PROXY_ENV) as auth:
        victim = await auth.register()
        attacker_refusals = []
        for _ in range(40):  # guessing as fast as the throttle lets the attacker, for a long time
            attacker_refusals.append(await refused(login_from(auth, "203.0.113.9", victim.email, WRONG)))
            clock.advance(1)
        assert any(r.code == grpc.StatusCode.RESOURCE_EXHAUSTED for r in attacker_refusals)
        # The real user, from their own address, gets in at once with the correct password.
        response = await login_from(auth, "198.51.100.7", victim.email, PASSWORD)
        assert response.user.id == victim.id  # type: ignore[attr-defined]


async def test_failures_through_the_dashboard_do_not_lock_other_dashboard_users(
    make_database_url: Callable[[str], str],
) -> None:
    clock = FakeClock()
    async with throttled_server(make_database_url("sqlite"), clock, **PROXY_ENV) as auth:
        users = [await auth.register() for _ in range(3)]
        for i in range(42):  # the reproduced attack: 42 failures, all relayed by the dashboard
            await refused(login_from(auth, "203.0.113.9", f"guess{i}@example.com", WRONG))
        for _ in range(3):  # ... and one more every 300 s
            clock.advance(300)
            await refused(login_from(auth, "203.0.113.9", "guess@example.com", WRONG))
        for i, user in enumerate(users):
            await login_from(auth, f"198.51.100.{i + 1}", user.email, PASSWORD)


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(make_database_url: Callable[[str], str]) -> None:
    clock = FakeClock()
    async with throttled_server(make_database_url("sqlite"), clock, AUTH_LOGIN_PEER_MAX_FAILURES="5") as auth:
        for i in range(5):  # each claims another address: without AUTH_TRUSTED_PROXIES none is believed
            await refused(login_from(auth, f"203.0.113.{i}", f"guess{i}@example.com", WRONG))
        blocked = await refused(login_from(auth, "203.0.113.99", "other@example.com", WRONG))
        assert (blocked.code, blocked.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, LOGIN_THROTTLED)


async def test_many_addresses_still_cannot_guess_one_account_freely(make_database_url: Callable[[str], str]) -> None:
    clock = FakeClock()
    env = {**PROXY_ENV, "AUTH_LOGIN_ACCOUNT_MAX_FAILURES": "20"}
    async with throttled_server(make_database_url("sqlite"), clock, **env) as auth:
        victim = await auth.register()
        for i in range(20):  # a botnet: every guess from another address
            await refused(login_from(auth, f"203.0.113.{i}", victim.email, WRONG))
        blocked = await refused(login_from(auth, "203.0.113.200", victim.email, WRONG))
        assert (blocked.code, blocked.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, LOGIN_THROTTLED)


async def test_change_password_failures_count_like_login_failures(make_database_url: Callable[[str], str]) -> None:
    clock = FakeClock()
    async with throttled_server(make_database_url("sqlite"), clock) as auth:
        user = await auth.register()
        session = await auth.login(user.email)

        def change(current: str) -> grpc.aio.UnaryUnaryCall[object, object]:
            request = auth_pb2.ChangePasswordRequest(current_password=current, new_password="a brand new one 1")
            call: grpc.aio.UnaryUnaryCall[object, object] = auth.stub.ChangePassword(
                request, metadata=bearer(session.access_token)
            )
            return call

        codes = [(await refused(change(f"guess number {i}"))).code for i in range(5)]
        assert codes[:3] == [grpc.StatusCode.INVALID_ARGUMENT] * 3  # THROTTLE_ENV allows 3 failures
        assert codes[3:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
        blocked = await refused(change(PASSWORD))  # even the right one waits: no oracle
        assert blocked.reason == LOGIN_THROTTLED and blocked.retry_after
        clock.advance(blocked.retry_after)
        await change(PASSWORD)


async def test_register_is_throttled_per_client(make_database_url: Callable[[str], str]) -> None:
    clock = FakeClock()
    env = {**PROXY_ENV, "AUTH_REGISTER_MAX_PER_CLIENT": "3"}
    async with throttled_server(make_database_url("sqlite"), clock, **env) as auth:

        def register(address: str, name: str) -> grpc.aio.UnaryUnaryCall[object, object]:
            request = auth_pb2.RegisterRequest(email=f"{name}@example.com", username=name, password=PASSWORD)
            call: grpc.aio.UnaryUnaryCall[object, object] = auth.stub.Register(
                request, metadata=(("x-forwarded-for", address),)
            )
            return call

        for i in range(3):
            await register("203.0.113.9", f"flood{i}")
        blocked = await refused(register("203.0.113.9", "flood_more"))
        assert (blocked.code, blocked.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, REGISTER_THROTTLED)
        await register("198.51.100.7", "someone_else")  # another client is not affected
