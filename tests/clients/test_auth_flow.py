"""The client against the real auth and download servers: accounts, logout, refresh across expiry,
concurrent refresh that rotates once, and the auth errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from clients import (
    AlreadyExistsError,
    AuthenticationError,
    FileTokenStore,
    InvalidArgumentError,
    PermissionDeniedError,
    Tokens,
)
from clients.testing import TEST_PASSWORD, MediadlServers
from tests.clients.conftest import CallCounter


async def test_register_login_whoami_update_logout(servers: MediadlServers) -> None:
    client = await servers.client()
    assert not client.is_logged_in
    registered = await client.register(email="Ada@Example.com", username="ada", password=TEST_PASSWORD, full_name="Ada")
    assert (registered.email, registered.username, registered.full_name) == ("ada@example.com", "ada", "Ada")
    assert not client.is_logged_in  # registering does not log in

    me = await client.login("ada@example.com", TEST_PASSWORD)
    assert me.id == registered.id and client.is_logged_in
    assert (await client.whoami()).id == me.id
    assert (await client.get_user(me.id)).username == "ada"
    updated = await client.update_me(bio="downloads things")
    assert (updated.bio, updated.full_name) == ("downloads things", "Ada")  # fields not given stay

    before_logout = client.tokens.load()
    assert before_logout is not None
    await client.logout()
    assert not client.is_logged_in
    with pytest.raises(AuthenticationError) as missing:
        await client.whoami()
    assert missing.value.reason == "CREDENTIALS_MISSING"

    # Logout revoked the login on the server: the old refresh token is dead, and a refresh says so.
    client.tokens.save(before_logout)
    with pytest.raises(AuthenticationError):
        await client.refresh()
    assert not client.is_logged_in  # a refused refresh ends the local session too
    await client.logout()  # logged out already: a no-op


async def test_auth_errors_map_to_the_tree(servers: MediadlServers) -> None:
    alice = await servers.logged_in_client(username="alice")
    bob = await servers.logged_in_client(username="bob")
    anonymous = await servers.client()

    with pytest.raises(AlreadyExistsError):
        await anonymous.register(email="alice@example.com", username="alice2", password=TEST_PASSWORD)
    with pytest.raises(InvalidArgumentError) as invalid:
        await anonymous.register(email="not-an-email", username="x", password="short")
    assert {"email", "username", "password"} <= {v.field for v in invalid.value.field_violations}
    with pytest.raises(AuthenticationError) as wrong:
        await anonymous.login("alice@example.com", "wrong password!")
    assert not anonymous.is_logged_in and wrong.value.code == "UNAUTHENTICATED"
    with pytest.raises(PermissionDeniedError):
        await alice.get_user((await bob.whoami()).id)


async def test_expired_access_token_is_refreshed_once_and_the_call_repeated(servers: MediadlServers) -> None:
    counter = CallCounter()
    client = await servers.logged_in_client(interceptors=[counter])
    me = await client.whoami()
    logged_in = client.tokens.load()
    assert logged_in is not None
    expired = servers.issue_access_token(me.id, ttl_seconds=-60)
    client.tokens.save(Tokens(access_token=expired, refresh_token=logged_in.refresh_token))

    assert (await client.whoami()).id == me.id  # auth server refused, refreshed, repeated
    assert counter.refreshes == 1
    rotated = client.tokens.load()
    assert rotated is not None
    assert rotated.access_token not in (expired, logged_in.access_token)
    assert rotated.refresh_token != logged_in.refresh_token

    client.tokens.save(Tokens(access_token=expired, refresh_token=rotated.refresh_token))
    page = await client.list_tasks()  # the download server's interceptor says CREDENTIALS_EXPIRED too
    assert page.total_size == 0
    assert counter.refreshes == 2


async def test_concurrent_calls_with_an_expired_token_share_one_refresh(servers: MediadlServers) -> None:
    counter = CallCounter()
    client = await servers.logged_in_client(interceptors=[counter])
    me = await client.whoami()
    tokens = client.tokens.load()
    assert tokens is not None
    client.tokens.save(Tokens(servers.issue_access_token(me.id, ttl_seconds=-60), tokens.refresh_token))

    calls = [client.whoami() if i % 2 else client.list_tasks() for i in range(20)]
    results = await asyncio.gather(*calls)

    assert len(results) == 20
    assert counter.refreshes == 1
    # Two refreshes with the same token would have revoked the whole login; it is intact:
    await client.refresh()
    assert (await client.whoami()).id == me.id
    assert counter.refreshes == 2


async def test_a_revoked_refresh_token_ends_the_session(servers: MediadlServers) -> None:
    client = await servers.logged_in_client()
    me = await client.whoami()
    tokens = client.tokens.load()
    assert tokens is not None
    await client.refresh()  # rotates: `tokens.refresh_token` is now used up
    client.tokens.save(Tokens(servers.issue_access_token(me.id, ttl_seconds=-60), tokens.refresh_token))
    with pytest.raises(AuthenticationError):
        await client.whoami()
    assert not client.is_logged_in


async def test_clients_sharing_a_token_file_rotate_once(servers: MediadlServers, tmp_path: Path) -> None:
    # Separate clients stand for separate CLI processes: no shared asyncio lock, only the file's lock.
    path = tmp_path / "tokens.json"
    first = await servers.logged_in_client(tokens=FileTokenStore(path))
    me = await first.whoami()
    tokens = first.tokens.load()
    assert tokens is not None
    first.tokens.save(Tokens(servers.issue_access_token(me.id, ttl_seconds=-60), tokens.refresh_token))
    counter = CallCounter()
    others = [await servers.client(tokens=FileTokenStore(path), interceptors=[counter]) for _ in range(5)]

    users = await asyncio.gather(*(client.whoami() for client in others))

    assert {user.id for user in users} == {me.id}
    assert counter.refreshes == 1
    await first.refresh()  # the login survived: no refresh token was presented twice
