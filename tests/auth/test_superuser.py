"""The first superuser: created at start-up from settings, once, and never by promoting someone else."""

from __future__ import annotations

import grpc
import pytest

from mediadl.auth.v1 import auth_pb2
from mediadl_common.errors import AlreadyExists
from tests.auth.helpers import ADMIN, ADMIN_ENV, auth_settings, bearer, failure, running_auth_server


async def superusers(database_url: str) -> list[auth_pb2.User]:
    async with running_auth_server(auth_settings(database_url, **ADMIN_ENV)) as auth:
        admin = await auth.login(ADMIN["email"], ADMIN["password"])
        return [admin.user]


async def test_the_first_superuser_is_created_once_across_restarts(database_url: str) -> None:
    [first] = await superusers(database_url)
    [second] = await superusers(database_url)  # second start-up: nothing to do, and no error

    assert first.is_superuser and first.email == ADMIN["email"]
    assert second.id == first.id and second.create_time == first.create_time


async def test_an_existing_user_with_that_email_is_left_as_it_is(database_url: str) -> None:
    async with running_auth_server(auth_settings(database_url)) as auth:
        await auth.register(email=ADMIN["email"].upper(), username="someone", password="their own password")

    async with running_auth_server(auth_settings(database_url, **ADMIN_ENV)) as auth:
        session = await auth.login(ADMIN["email"], "their own password")
        assert not session.user.is_superuser and session.user.username == "someone"
        assert (await failure(auth.login(ADMIN["email"], ADMIN["password"]))).code == grpc.StatusCode.UNAUTHENTICATED


async def test_a_superuser_username_held_by_someone_else_stops_start_up(database_url: str) -> None:
    async with running_auth_server(auth_settings(database_url)) as auth:
        await auth.register(username=ADMIN["username"])

    with pytest.raises(AlreadyExists):
        async with running_auth_server(auth_settings(database_url, **ADMIN_ENV)):
            pass  # pragma: no cover - start-up must fail


async def test_without_settings_no_superuser_exists(database_url: str) -> None:
    async with running_auth_server(auth_settings(database_url)) as auth:
        user, session = await auth.new_session()
        assert not user.is_superuser
        other = await auth.register()
        refused = await failure(
            auth.stub.GetUser(auth_pb2.GetUserRequest(user_id=other.id), metadata=bearer(session.access_token))
        )
        assert refused.code == grpc.StatusCode.PERMISSION_DENIED
