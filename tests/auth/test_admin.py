"""User administration (ListUsers, UpdateUser) and revocation (ListRevocations) through a real auth server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from mediadl.auth.v1 import auth_pb2
from tests.auth.helpers import (
    ADMIN,
    ADMIN_ENV,
    PASSWORD,
    AuthClient,
    auth_settings,
    bearer,
    failure,
    running_auth_server,
)

SERVICE_TOKEN = "service-token-for-tests-0123456789"


@pytest.fixture
async def admin_auth(database_url: str) -> AsyncIterator[AuthClient]:
    settings = auth_settings(database_url, AUTH_SERVICE_TOKEN=SERVICE_TOKEN, **ADMIN_ENV)
    async with running_auth_server(settings) as client:
        yield client


async def admin_token(auth: AuthClient) -> tuple[tuple[str, str]]:
    return bearer((await auth.login(ADMIN["email"], ADMIN["password"])).access_token)


def mask(*paths: str) -> FieldMask:
    return FieldMask(paths=list(paths))


async def test_list_users_pages_searches_and_counts(admin_auth: AuthClient) -> None:
    md = await admin_token(admin_auth)
    for i in range(5):
        await admin_auth.register(email=f"page{i}@example.com", username=f"Pager_{i}")
    await admin_auth.register(email="else@example.com", username="someone")

    seen, token = [], ""
    while True:
        reply = await admin_auth.stub.ListUsers(
            auth_pb2.ListUsersRequest(page_size=2, page_token=token, query="pAgEr"), metadata=md
        )
        assert reply.total_size == 5
        seen += [u.username for u in reply.users]
        token = reply.next_page_token
        if not token:
            break
    assert seen == [f"Pager_{i}" for i in range(5)]  # oldest first, each once
    everyone = await admin_auth.stub.ListUsers(auth_pb2.ListUsersRequest(page_size=1000), metadata=md)
    assert everyone.total_size == 7 and len(everyone.users) == 7  # page size clamped to 100, not refused
    by_email = await admin_auth.stub.ListUsers(auth_pb2.ListUsersRequest(query="ELSE@"), metadata=md)
    assert [u.username for u in by_email.users] == ["someone"]


async def test_list_users_refuses_non_superusers_and_foreign_page_tokens(admin_auth: AuthClient) -> None:
    _, session = await admin_auth.new_session()
    denied = await failure(
        admin_auth.stub.ListUsers(auth_pb2.ListUsersRequest(), metadata=bearer(session.access_token))
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED

    md = await admin_token(admin_auth)
    await admin_auth.register()
    first = await admin_auth.stub.ListUsers(auth_pb2.ListUsersRequest(page_size=1), metadata=md)
    for request in (
        auth_pb2.ListUsersRequest(page_size=1, page_token=first.next_page_token, query="x"),  # another query
        auth_pb2.ListUsersRequest(page_token=first.next_page_token[:-2] + "AA"),  # altered
        auth_pb2.ListUsersRequest(page_size=-1),
        auth_pb2.ListUsersRequest(query="a\x00b"),
    ):
        error = await failure(admin_auth.stub.ListUsers(request, metadata=md))
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_update_user_changes_the_masked_fields(admin_auth: AuthClient) -> None:
    md = await admin_token(admin_auth)
    user = await admin_auth.register(full_name="Old Name")

    promoted = await admin_auth.stub.UpdateUser(
        auth_pb2.UpdateUserRequest(
            user_id=user.id, full_name="New", is_superuser=True, update_mask=mask("is_superuser")
        ),
        metadata=md,
    )
    assert (promoted.user.is_superuser, promoted.user.full_name) == (True, "Old Name")
    renamed = await admin_auth.stub.UpdateUser(
        auth_pb2.UpdateUserRequest(user_id=user.id, full_name="New Name"), metadata=md
    )
    assert (renamed.user.full_name, renamed.user.is_superuser, renamed.user.is_active) == ("New Name", True, True)


async def test_update_user_refuses_bad_input_and_self_demotion(admin_auth: AuthClient) -> None:
    md = await admin_token(admin_auth)
    me = (await admin_auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=md)).user
    cases = [
        (
            auth_pb2.UpdateUserRequest(user_id=me.id, is_superuser=False, update_mask=mask("is_superuser")),
            "FAILED_PRECONDITION",
        ),
        (
            auth_pb2.UpdateUserRequest(user_id=me.id, is_active=False, update_mask=mask("is_active")),
            "FAILED_PRECONDITION",
        ),
        (auth_pb2.UpdateUserRequest(user_id="not-a-uuid", full_name="x"), "INVALID_ARGUMENT"),
        (auth_pb2.UpdateUserRequest(user_id=me.id, full_name="x\u202ey"), "INVALID_ARGUMENT"),
        (auth_pb2.UpdateUserRequest(user_id=me.id, update_mask=mask("email")), "INVALID_ARGUMENT"),
        (auth_pb2.UpdateUserRequest(user_id="00000000-0000-4000-8000-000000000000", full_name="x"), "NOT_FOUND"),
    ]
    for request, code in cases:
        assert (await failure(admin_auth.stub.UpdateUser(request, metadata=md))).code.name == code
    still = (await admin_auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=md)).user
    assert still.is_superuser and still.is_active
    # A superuser may still rename themselves.
    await admin_auth.stub.UpdateUser(auth_pb2.UpdateUserRequest(user_id=me.id, full_name="Root"), metadata=md)

    _, session = await admin_auth.new_session()
    plain = await failure(
        admin_auth.stub.UpdateUser(
            auth_pb2.UpdateUserRequest(user_id=me.id, full_name="x"), metadata=bearer(session.access_token)
        )
    )
    assert plain.code == grpc.StatusCode.PERMISSION_DENIED


async def test_deactivation_revokes_at_once_and_reactivation_lets_new_tokens_in(admin_auth: AuthClient) -> None:
    md = await admin_token(admin_auth)
    user, session = await admin_auth.new_session()

    await admin_auth.stub.UpdateUser(
        auth_pb2.UpdateUserRequest(user_id=user.id, is_active=False, update_mask=mask("is_active")), metadata=md
    )
    refused = await failure(admin_auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(session.access_token)))
    assert (refused.code, refused.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_REVOKED")
    relogin = await failure(admin_auth.login(user.email))
    assert relogin.code == grpc.StatusCode.PERMISSION_DENIED

    await admin_auth.stub.UpdateUser(
        auth_pb2.UpdateUserRequest(user_id=user.id, is_active=True, update_mask=mask("is_active")), metadata=md
    )
    fresh = await admin_auth.login(user.email)  # within the same second as the revocation, quite likely
    me = await admin_auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(fresh.access_token))
    assert me.user.id == user.id


async def test_change_password_and_refresh_reuse_revoke_access_tokens(admin_auth: AuthClient) -> None:
    user, session = await admin_auth.new_session()
    await admin_auth.stub.ChangePassword(
        auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password="another password 1"),
        metadata=bearer(session.access_token),
    )
    old = await failure(admin_auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(session.access_token)))
    assert old.reason == "CREDENTIALS_REVOKED"
    fresh = await admin_auth.login(user.email, "another password 1")
    await admin_auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(fresh.access_token))

    rotated = await admin_auth.stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=fresh.refresh_token))
    await failure(admin_auth.stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=fresh.refresh_token)))
    stolen = await failure(admin_auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(rotated.access_token)))
    assert stolen.reason == "CREDENTIALS_REVOKED"


async def test_list_revocations_is_for_the_service_token_only(admin_auth: AuthClient) -> None:
    md = await admin_token(admin_auth)
    user, _ = await admin_auth.new_session()
    await admin_auth.stub.UpdateUser(
        auth_pb2.UpdateUserRequest(user_id=user.id, is_active=False, update_mask=mask("is_active")), metadata=md
    )
    for metadata in (None, md, bearer("wrong-token-but-long-enough-000"), (("authorization", SERVICE_TOKEN),)):
        denied = await failure(admin_auth.stub.ListRevocations(auth_pb2.ListRevocationsRequest(), metadata=metadata))
        assert denied.code == grpc.StatusCode.PERMISSION_DENIED

    reply = await admin_auth.stub.ListRevocations(auth_pb2.ListRevocationsRequest(), metadata=bearer(SERVICE_TOKEN))
    assert [r.user_id for r in reply.revocations] == [user.id]
    assert reply.revocations[0].revoke_time.ToDatetime() <= reply.server_time.ToDatetime()
    later = await admin_auth.stub.ListRevocations(
        auth_pb2.ListRevocationsRequest(since_time=reply.server_time), metadata=bearer(SERVICE_TOKEN)
    )
    assert list(later.revocations) == []
    bad = Timestamp(seconds=-(2**62))
    invalid = await failure(
        admin_auth.stub.ListRevocations(auth_pb2.ListRevocationsRequest(since_time=bad), metadata=bearer(SERVICE_TOKEN))
    )
    assert (invalid.code, list(invalid.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, ["since_time"])


async def test_without_a_service_token_nobody_may_list_revocations(database_url: str) -> None:
    async with running_auth_server(auth_settings(database_url)) as auth:
        denied = await failure(auth.stub.ListRevocations(auth_pb2.ListRevocationsRequest(), metadata=bearer("x" * 40)))
        assert denied.code == grpc.StatusCode.PERMISSION_DENIED
