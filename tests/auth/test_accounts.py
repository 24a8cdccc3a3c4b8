"""Register, GetMe, UpdateMe, GetUser and GetJwks through a real server on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from auth_server.adapters.repository import SqlUserRepository
from mediadl.auth.v1 import auth_pb2
from tests.auth.helpers import ADMIN, PASSWORD, AuthClient, bearer, execute_sql, failure, set_active


async def test_register_returns_the_profile_without_any_password(auth: AuthClient) -> None:
    user = await auth.register(email="  Ada.Lovelace@Example.COM ", username="ada.l", full_name="Ada Lovelace")

    assert uuid.UUID(user.id)
    assert user.email == "ada.lovelace@example.com"  # stored lower-cased and trimmed
    assert (user.username, user.full_name, user.bio, user.avatar_url) == ("ada.l", "Ada Lovelace", "", "")
    assert user.is_active and not user.is_superuser
    assert user.create_time.seconds > 0 and user.update_time == user.create_time
    assert PASSWORD not in str(user) and "$2b$" not in str(user)


async def test_register_reports_every_bad_field_at_once(auth: AuthClient) -> None:
    request = auth_pb2.RegisterRequest(email="not-an-email", username="x!", password="short", full_name="n" * 256)
    error = await failure(auth.stub.Register(request))

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(error.violations) == {"email", "username", "password", "full_name"}


@pytest.mark.parametrize(
    ("password", "accepted"),
    [("a" * 72, True), ("a" * 73, False), ("é" * 36, True), ("é" * 37, False), ("a" * 7, False), ("a" * 8, True)],
    ids=["72-ascii", "73-ascii", "72-bytes-utf8", "74-bytes-utf8", "7-bytes", "8-bytes"],
)
async def test_password_length_is_counted_in_utf8_bytes_and_never_cut(
    auth: AuthClient, password: str, accepted: bool
) -> None:
    if not accepted:
        error = await failure(auth.register(password=password))
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert list(error.violations) == ["password"]
        return
    user = await auth.register(password=password)
    await auth.login(user.email, password)
    # Every byte counts, the last one too.
    assert (await failure(auth.login(user.email, password[:-1] + "b"))).code == grpc.StatusCode.UNAUTHENTICATED
    if len(password.encode()) == 72:
        # bcrypt would ignore byte 73 and let this in: it is refused before bcrypt sees it.
        assert (await failure(auth.login(user.email, password + "x"))).violations.keys() == {"password"}


@pytest.mark.parametrize(
    ("username", "ok"),
    [("abc", True), ("a" * 50, True), ("A.b_c-9", True), ("ab", False), ("a" * 51, False), ("bad name", False)],
)
async def test_username_rules(auth: AuthClient, username: str, ok: bool) -> None:
    if ok:
        assert (await auth.register(username=username)).username == username
    else:
        assert set((await failure(auth.register(username=username))).violations) == {"username"}


async def test_duplicate_email_in_any_case_or_username_is_already_exists(auth: AuthClient) -> None:
    await auth.register(email="dup@example.com", username="dup_user")

    by_email = await failure(auth.register(email="DUP@Example.com"))
    by_username = await failure(auth.register(username="dup_user"))

    assert (by_email.code, by_email.reason) == (grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN")
    assert (by_username.code, by_username.reason) == (grpc.StatusCode.ALREADY_EXISTS, "USERNAME_TAKEN")


async def test_concurrent_registrations_of_one_email_create_exactly_one_user(auth: AuthClient) -> None:
    calls = [auth.register(email="race@example.com") for _ in range(6)]
    results = await asyncio.gather(*calls, return_exceptions=True)

    users = [r for r in results if isinstance(r, auth_pb2.User)]
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(users) == 1
    assert [e.code() for e in errors] == [grpc.StatusCode.ALREADY_EXISTS] * 5


async def test_unique_key_race_past_the_pre_check_is_already_exists_not_internal(
    auth: AuthClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await auth.register(email="first@example.com", username="first_user")
    # Blind the pre-check, as if the other insert committed between our check and our insert.
    monkeypatch.setattr(SqlUserRepository, "get_by_email", lambda self, email: None)
    monkeypatch.setattr(SqlUserRepository, "get_by_username", lambda self, username: None)

    for kwargs in ({"email": "first@example.com"}, {"username": "first_user"}):
        error = await failure(auth.register(**kwargs))
        assert error.code == grpc.StatusCode.ALREADY_EXISTS


async def test_get_me_needs_an_access_token(auth: AuthClient) -> None:
    user, session = await auth.new_session()

    me = (await auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(session.access_token))).user
    missing = await failure(auth.stub.GetMe(auth_pb2.GetMeRequest()))

    assert me == user
    assert (missing.code, missing.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_MISSING")


async def test_update_me_with_a_mask_changes_exactly_the_named_fields(auth: AuthClient) -> None:
    _, session = await auth.new_session()
    md = bearer(session.access_token)
    first = auth_pb2.UpdateMeRequest(full_name="Grace", bio="COBOL", avatar_url="https://example.com/g.png")
    await auth.stub.UpdateMe(first, metadata=md)

    # The mask names bio (set to empty: cleared) but not full_name: the new full_name is ignored.
    masked = auth_pb2.UpdateMeRequest(full_name="Ignored", bio="", update_mask=FieldMask(paths=["bio"]))
    user = (await auth.stub.UpdateMe(masked, metadata=md)).user

    assert (user.full_name, user.bio, user.avatar_url) == ("Grace", "", "https://example.com/g.png")
    assert user.update_time.ToDatetime() >= user.create_time.ToDatetime()
    assert (await auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=md)).user == user


async def test_update_me_with_an_empty_mask_changes_every_non_empty_field(auth: AuthClient) -> None:
    _, session = await auth.new_session()
    md = bearer(session.access_token)
    await auth.stub.UpdateMe(auth_pb2.UpdateMeRequest(full_name="Keep", bio="old bio"), metadata=md)

    user = (await auth.stub.UpdateMe(auth_pb2.UpdateMeRequest(bio="new bio"), metadata=md)).user

    assert (user.full_name, user.bio) == ("Keep", "new bio")


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (auth_pb2.UpdateMeRequest(full_name="x", update_mask=FieldMask(paths=["email"])), "update_mask"),
        (auth_pb2.UpdateMeRequest(avatar_url="ftp://example.com/a.png"), "avatar_url"),
        (auth_pb2.UpdateMeRequest(avatar_url="https://example.com/" + "a" * 2048), "avatar_url"),
        (auth_pb2.UpdateMeRequest(bio="b" * 1001), "bio"),
        (auth_pb2.UpdateMeRequest(full_name="nul\x00byte"), "full_name"),
    ],
    ids=["unknown-path", "scheme", "long-url", "long-bio", "nul-byte"],
)
async def test_update_me_refuses_bad_input_naming_the_field(
    auth: AuthClient, request_: auth_pb2.UpdateMeRequest, field: str
) -> None:
    _, session = await auth.new_session()
    error = await failure(auth.stub.UpdateMe(request_, metadata=bearer(session.access_token)))

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error.violations) == [field]


async def test_get_user_of_oneself_and_not_of_others(auth: AuthClient) -> None:
    me, session = await auth.new_session()
    other = await auth.register()
    md = bearer(session.access_token)

    assert (await auth.stub.GetUser(auth_pb2.GetUserRequest(user_id=me.id), metadata=md)).user == me
    denied = await failure(auth.stub.GetUser(auth_pb2.GetUserRequest(user_id=other.id), metadata=md))
    # An unknown id looks exactly like another user's: no probing which ids exist.
    unknown = await failure(auth.stub.GetUser(auth_pb2.GetUserRequest(user_id=str(uuid.uuid4())), metadata=md))
    malformed = await failure(auth.stub.GetUser(auth_pb2.GetUserRequest(user_id="42"), metadata=md))

    assert denied.code == unknown.code == grpc.StatusCode.PERMISSION_DENIED
    assert (malformed.code, list(malformed.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, ["user_id"])


async def test_a_superuser_reads_anyone_and_gets_not_found_for_unknown_ids(auth_with_admin: AuthClient) -> None:
    auth = auth_with_admin
    other = await auth.register()
    admin = await auth.login(ADMIN["email"], ADMIN["password"])
    md = bearer(admin.access_token)

    assert admin.user.is_superuser and admin.user.username == ADMIN["username"]
    assert (await auth.stub.GetUser(auth_pb2.GetUserRequest(user_id=other.id.upper()), metadata=md)).user == other
    missing = await failure(auth.stub.GetUser(auth_pb2.GetUserRequest(user_id=str(uuid.uuid4())), metadata=md))
    assert missing.code == grpc.StatusCode.NOT_FOUND


async def test_an_inactive_user_is_refused_everywhere(auth: AuthClient, database_url: str) -> None:
    user, session = await auth.new_session()
    set_active(database_url, user.id, False)
    md = bearer(session.access_token)

    refusals = [
        await failure(auth.login(user.email)),
        await failure(auth.stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=session.refresh_token))),
        await failure(auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=md)),
        await failure(auth.stub.UpdateMe(auth_pb2.UpdateMeRequest(bio="x"), metadata=md)),
        await failure(
            auth.stub.ChangePassword(
                auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password="another password"), metadata=md
            )
        ),
        await failure(auth.stub.GetUser(auth_pb2.GetUserRequest(user_id=user.id), metadata=md)),
    ]

    assert {(r.code, r.reason) for r in refusals} == {(grpc.StatusCode.PERMISSION_DENIED, "USER_INACTIVE")}
    # Refusing an inactive user must not burn the refresh token: reactivated, it works again.
    set_active(database_url, user.id, True)
    await auth.stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=session.refresh_token))


async def test_an_inactive_user_with_a_wrong_password_learns_nothing_more(auth: AuthClient, database_url: str) -> None:
    user = await auth.register()
    set_active(database_url, user.id, False)

    assert (await failure(auth.login(user.email, "wrong password"))).code == grpc.StatusCode.UNAUTHENTICATED


async def test_get_jwks_is_public_and_empty_in_hs256_mode(auth: AuthClient) -> None:
    response = await auth.stub.GetJwks(auth_pb2.GetJwksRequest())

    assert list(response.keys) == []


async def test_a_token_of_a_deleted_account_no_longer_authenticates(auth: AuthClient, database_url: str) -> None:
    user, session = await auth.new_session()
    stored = user.id.replace("-", "") if database_url.startswith("sqlite") else user.id
    execute_sql(database_url, "DELETE FROM refresh_tokens WHERE user_id = :id", {"id": stored})
    execute_sql(database_url, "DELETE FROM users WHERE id = :id", {"id": stored})

    error = await failure(auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(session.access_token)))

    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")


async def test_health_and_reflection_are_served_without_a_token(auth: AuthClient) -> None:
    health = health_pb2_grpc.HealthStub(auth.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="mediadl.auth.v1.AuthService"))
    reflection = reflection_pb2_grpc.ServerReflectionStub(auth.channel)
    call = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    services = {s.name async for r in call for s in r.list_services_response.service}

    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert "mediadl.auth.v1.AuthService" in services
