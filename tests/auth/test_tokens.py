"""Login, refresh-token rotation and theft detection, logout, password change, and token type/expiry rules."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable
from typing import Any

import grpc
import jwt
import pytest

from auth_server.adapters.tokens import JwtIssuer
from mediadl.auth.v1 import auth_pb2
from tests.auth.helpers import PASSWORD, SECRET, AuthClient, bearer, failure


def refresh(auth: AuthClient, token: str) -> Awaitable[Any]:
    call: Awaitable[Any] = auth.stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=token))
    return call


def get_me(auth: AuthClient, token: str) -> Awaitable[Any]:
    call: Awaitable[Any] = auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(token))
    return call


async def test_login_returns_a_bearer_pair_with_the_documented_claims(auth: AuthClient) -> None:
    user = await auth.register()
    session = await auth.login(user.email)

    assert (session.token_type, session.expires_in, session.user) == ("Bearer", 1800, user)
    access = jwt.decode(session.access_token, SECRET, ["HS256"], audience="mediadl")
    refresh_claims = jwt.decode(session.refresh_token, SECRET, ["HS256"], audience="mediadl")
    assert (access["sub"], access["type"], access["iss"]) == (user.id, "access", "mediadl-auth")
    # iat is sub-second (revocation needs it), exp whole seconds.
    assert access["exp"] - int(access["iat"]) == 1800
    assert (refresh_claims["sub"], refresh_claims["type"]) == (user.id, "refresh")
    assert refresh_claims["exp"] - int(refresh_claims["iat"]) == 7 * 24 * 3600
    assert access["jti"] != refresh_claims["jti"]
    assert (await get_me(auth, session.access_token)).user == user


async def test_login_is_case_insensitive_on_email(auth: AuthClient) -> None:
    user = await auth.register(email="Mixed.Case@Example.com")

    session = await auth.login("MIXED.case@EXAMPLE.COM")

    assert session.user.id == user.id


async def test_unknown_email_and_wrong_password_fail_identically(auth: AuthClient) -> None:
    user = await auth.register()

    wrong_password = await failure(auth.login(user.email, "not the password"))
    unknown_email = await failure(auth.login("nobody@example.com", PASSWORD))

    assert wrong_password == unknown_email
    assert (wrong_password.code, wrong_password.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")


async def test_login_without_credentials_names_the_missing_fields(auth: AuthClient) -> None:
    error = await failure(auth.stub.Login(auth_pb2.LoginRequest()))

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(error.violations) == {"email", "password"}


async def test_refresh_rotates_and_the_presented_token_stops_working(auth: AuthClient) -> None:
    user, first = await auth.new_session()

    second = await refresh(auth, first.refresh_token)

    assert second.token_type == "Bearer" and second.user == user
    assert second.refresh_token != first.refresh_token
    assert (await get_me(auth, second.access_token)).user == user
    # The rotated-away token is spent; presenting it again is treated as theft.
    reused = await failure(refresh(auth, first.refresh_token))
    assert (reused.code, reused.reason) == (grpc.StatusCode.UNAUTHENTICATED, "REFRESH_TOKEN_REUSED")


async def test_reuse_revokes_every_token_of_that_login_but_not_other_logins(auth: AuthClient) -> None:
    user, stolen = await auth.new_session()
    other_login = await auth.login(user.email)
    rotated = await refresh(auth, stolen.refresh_token)
    descendant = await refresh(auth, rotated.refresh_token)

    await failure(refresh(auth, stolen.refresh_token))

    # The legitimate holder's newest token, a sibling in the same family, is revoked too.
    cut_off = await failure(refresh(auth, descendant.refresh_token))
    assert cut_off.code == grpc.StatusCode.UNAUTHENTICATED
    assert (await refresh(auth, other_login.refresh_token)).user == user


async def test_concurrent_rotations_of_one_token_let_exactly_one_win(auth: AuthClient) -> None:
    _, session = await auth.new_session()

    results = await asyncio.gather(*(refresh(auth, session.refresh_token) for _ in range(5)), return_exceptions=True)

    winners = [r for r in results if isinstance(r, auth_pb2.RefreshTokenResponse)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1
    assert [e.code() for e in losers] == [grpc.StatusCode.UNAUTHENTICATED] * 4
    # The losers' reuse revoked the whole login, the winner's new token included.
    assert (await failure(refresh(auth, winners[0].refresh_token))).code == grpc.StatusCode.UNAUTHENTICATED


async def test_logout_revokes_that_login_only(auth: AuthClient) -> None:
    user, session = await auth.new_session()
    other_login = await auth.login(user.email)
    rotated = await refresh(auth, session.refresh_token)

    await auth.stub.Logout(auth_pb2.LogoutRequest(refresh_token=rotated.refresh_token))

    assert (await failure(refresh(auth, rotated.refresh_token))).code == grpc.StatusCode.UNAUTHENTICATED
    assert (await refresh(auth, other_login.refresh_token)).user == user
    # Logging out twice is harmless.
    await auth.stub.Logout(auth_pb2.LogoutRequest(refresh_token=rotated.refresh_token))


async def test_logout_needs_a_genuine_refresh_token(auth: AuthClient) -> None:
    _, session = await auth.new_session()

    empty = await failure(auth.stub.Logout(auth_pb2.LogoutRequest()))
    access = await failure(auth.stub.Logout(auth_pb2.LogoutRequest(refresh_token=session.access_token)))

    assert (empty.code, list(empty.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, ["refresh_token"])
    assert (access.code, access.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")


async def test_change_password_revokes_every_refresh_token_of_the_user(auth: AuthClient) -> None:
    user, session = await auth.new_session()
    other_login = await auth.login(user.email)
    request = auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password="a brand new password")

    await auth.stub.ChangePassword(request, metadata=bearer(session.access_token))

    for token in (session.refresh_token, other_login.refresh_token):
        assert (await failure(refresh(auth, token))).code == grpc.StatusCode.UNAUTHENTICATED
    assert (await failure(auth.login(user.email))).code == grpc.StatusCode.UNAUTHENTICATED
    assert (await auth.login(user.email, "a brand new password")).user.id == user.id


@pytest.mark.parametrize(
    ("current", "new", "fields"),
    [
        ("wrong password", "a brand new password", {"current_password"}),
        (PASSWORD, "short", {"new_password"}),
        (PASSWORD, "n" * 73, {"new_password"}),
        (PASSWORD, PASSWORD, {"new_password"}),
        ("", "", {"current_password", "new_password"}),
    ],
    ids=["wrong-current", "short-new", "73-bytes", "unchanged", "empty"],
)
async def test_change_password_refusals_name_the_field_and_change_nothing(
    auth: AuthClient, current: str, new: str, fields: set[str]
) -> None:
    user, session = await auth.new_session()
    request = auth_pb2.ChangePasswordRequest(current_password=current, new_password=new)

    error = await failure(auth.stub.ChangePassword(request, metadata=bearer(session.access_token)))

    assert (error.code, set(error.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, fields)
    assert (await refresh(auth, session.refresh_token)).user == user


async def test_a_refresh_token_is_no_access_token_and_the_reverse(auth: AuthClient) -> None:
    _, session = await auth.new_session()

    as_access = await failure(get_me(auth, session.refresh_token))
    as_refresh = await failure(refresh(auth, session.access_token))

    assert (as_access.code, as_access.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")
    assert (as_refresh.code, as_refresh.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")


async def test_expired_tokens_are_refused_as_expired(auth: AuthClient) -> None:
    user, _ = await auth.new_session()
    an_hour_ago = JwtIssuer(auth.settings.jwt, clock=lambda: time.time() - 3600)
    access, _ = an_hour_ago.issue(sub=user.id, type="access", ttl_seconds=60)
    refresh_token, _ = an_hour_ago.issue(sub=user.id, type="refresh", ttl_seconds=60, family="f")

    for call in (get_me(auth, access), refresh(auth, refresh_token)):
        error = await failure(call)
        assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_EXPIRED")


def _tamper_subject(token: str, sub: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = sub
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_tampered_forged_and_unsigned_tokens_are_invalid(auth: AuthClient) -> None:
    _, mine = await auth.new_session()
    victim, _ = await auth.new_session()
    claims = jwt.decode(mine.access_token, options={"verify_signature": False})
    candidates = [
        _tamper_subject(mine.access_token, victim.id),  # someone else's id under my signature
        _tamper_subject(mine.refresh_token, victim.id),
        jwt.encode({**claims, "sub": victim.id}, "another secret of at least thirty-two bytes", algorithm="HS256"),
        jwt.encode({**claims, "sub": victim.id}, "", algorithm="none"),
        "not.a.jwt",
    ]

    for token in candidates:
        for call in (get_me(auth, token), refresh(auth, token)):
            error = await failure(call)
            assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID"), token


async def test_a_genuine_refresh_token_the_server_never_issued_is_refused(auth: AuthClient) -> None:
    user, _ = await auth.new_session()
    # Signed with the real key but never recorded (e.g. minted by a leaked key, or a database restored).
    unknown, _ = JwtIssuer(auth.settings.jwt).issue(sub=user.id, type="refresh", ttl_seconds=60, family="x")

    error = await failure(refresh(auth, unknown))

    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")
