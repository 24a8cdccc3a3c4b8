"""Dashboard sessions over HTTP against both real gRPC servers: login and its cookie (signed, HttpOnly,
SameSite=Strict, no token in it), login CSRF, logout revoking the refresh token, expiry with the refresh
token, idle sweeping, a refused refresh, and what the logs say."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from http.cookies import SimpleCookie

import pytest
from aiohttp.test_utils import TestServer

from clients import AuthenticationError, MemoryTokenStore, Tokens
from clients.testing import MediadlServers
from dashboard.security import LOGIN_COOKIE, SESSION_COOKIE, SESSIONS
from dashboard.sessions import refresh_token_expiry
from mediadl_common.log import install_context_stamping
from tests.dashboard.conftest import FakeClock, MakeDashboard
from tests.dashboard.helpers import Browser, dashboard_settings, new_account, new_task, session_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

Browsers = Callable[[], Browser]


async def test_login_sets_a_signed_httponly_strict_cookie_and_keeps_tokens_server_side(
    servers: MediadlServers, dashboard: TestServer, browsers: Browsers
) -> None:
    account = await new_account(servers)
    browser = browsers()
    status, anonymous = await browser.get("/api/session")
    assert status == 200 and anonymous["user"] is None and anonymous["csrf_token"]
    browser.csrf = anonymous["csrf_token"]
    async with browser.session.post(
        browser.url("/api/login"),
        json={"email": account.email, "password": account.password},
        headers={"X-CSRF-Token": browser.csrf},
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
        cookies = SimpleCookie()
        for header in resp.headers.getall("Set-Cookie"):
            cookies.load(header)
    morsel = cookies[SESSION_COOKIE]
    assert morsel["httponly"] is True and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    session = session_of(dashboard, browser)
    tokens = session.client.tokens.load()
    assert tokens is not None
    # The cookie lives as long as the refresh token, and carries neither token.
    expected_age = refresh_token_expiry(tokens.refresh_token) - session.last_seen
    assert abs(int(morsel["max-age"]) - expected_age) <= 5
    for secret in (tokens.access_token, tokens.refresh_token):
        assert secret not in morsel.value and secret not in str(body)
    assert "eyJ" not in morsel.value and 'token"' not in str(body).replace("csrf_token", "")
    assert cookies[LOGIN_COOKIE].value == ""  # the pre-login cookie is dropped
    assert body["user"]["username"] == account.username and body["csrf_token"] != anonymous["csrf_token"]

    status, me = await browser.get("/api/session")
    assert status == 200 and me["user"]["email"] == account.email and me["csrf_token"] == body["csrf_token"]

    # A cookie whose signature does not match is no session at all.
    value = browser.cookie(SESSION_COOKIE)
    assert value is not None
    session_id, _, mac = value.rpartition(".")
    forged = Browser.open(browser.base)
    try:
        forged.session.cookie_jar.update_cookies({SESSION_COOKIE: f"{session_id}.{mac[::-1]}"}, browser.base)
        assert (await forged.get("/api/session"))[1]["user"] is None
        assert (await forged.get("/api/tasks"))[0] == 401
    finally:
        await forged.close()


async def test_wrong_credentials_and_missing_fields(servers: MediadlServers, browsers: Browsers) -> None:
    account = await new_account(servers)
    browser = browsers()
    browser.csrf = (await browser.get("/api/session"))[1]["csrf_token"]
    wrong = await browser.post("/api/login", {"email": account.email, "password": "not the password"})
    unknown = await browser.post("/api/login", {"email": "nobody@example.com", "password": "not the password"})
    assert wrong[0] == unknown[0] == 401
    assert wrong[1]["error"]["message"] == unknown[1]["error"]["message"]  # no hint which one was wrong
    assert browser.cookie(SESSION_COOKIE) is None

    status, body = await browser.post("/api/login", {"email": account.email})
    assert status == 400 and body["error"]["fields"] == [{"field": "password", "description": "is required"}]
    status, body = await browser.post("/api/login", ["not", "an", "object"])
    assert status == 400


async def test_login_needs_the_token_of_this_browser(servers: MediadlServers, browsers: Browsers) -> None:
    account = await new_account(servers)
    mine, other = browsers(), browsers()
    await mine.get("/api/session")  # has a pre-login cookie but sends no token
    other_token = (await other.get("/api/session"))[1]["csrf_token"]
    credentials = {"email": account.email, "password": account.password}
    for token in ("", other_token, "forged"):
        status, body = await mine.post("/api/login", credentials, csrf=token)
        assert status == 403 and body["error"]["code"] == "CSRF_FAILED", token
    assert mine.cookie(SESSION_COOKIE) is None


async def test_logout_revokes_the_refresh_token(
    servers: MediadlServers, dashboard: TestServer, browsers: Browsers
) -> None:
    account = await new_account(servers)
    browser = browsers()
    await browser.login(account)
    tokens = session_of(dashboard, browser).client.tokens.load()
    assert tokens is not None
    status, body = await browser.post("/api/logout")
    assert status == 200 and body == {"logged_out": True, "revoked": True}
    assert browser.cookie(SESSION_COOKIE) is None
    assert (await browser.get("/api/tasks"))[0] == 401
    assert len(dashboard.app[SESSIONS]) == 0
    # The login's refresh token is dead at the auth server, not just forgotten here.
    client = await servers.client(tokens=MemoryTokenStore(tokens))
    with pytest.raises(AuthenticationError):
        await client.refresh()


async def test_the_session_ends_with_its_refresh_token(
    servers: MediadlServers, make_dashboard: MakeDashboard, clock: FakeClock
) -> None:
    # Never idle for this test: only the refresh token's expiry can end the session.
    dashboard = await make_dashboard(idle_timeout_seconds=30 * 86400.0)
    account = await new_account(servers)
    browser = Browser.open(dashboard.make_url("/"))
    await browser.login(account)
    session = session_of(dashboard, browser)
    clock.offset = session.expires_at() - time.time() - 60  # a minute before the refresh token's exp
    assert (await browser.get("/api/tasks"))[0] == 200
    clock.offset += 61
    assert (await browser.get("/api/tasks"))[0] == 401
    assert (await browser.get("/api/session"))[1]["user"] is None
    assert len(dashboard.app[SESSIONS]) == 0 and session.closed
    await browser.close()


async def test_idle_sessions_are_swept(
    servers: MediadlServers, dashboard: TestServer, browsers: Browsers, clock: FakeClock
) -> None:
    browser = browsers()
    await browser.login(await new_account(servers))
    session = session_of(dashboard, browser)
    store = dashboard.app[SESSIONS]
    assert await store.sweep() == 0
    clock.offset = dashboard_settings().idle_timeout_seconds + 1
    assert await store.sweep() == 1
    assert session.closed and len(store) == 0
    assert (await browser.get("/api/tasks"))[0] == 401


async def test_a_refused_refresh_ends_the_session(
    servers: MediadlServers, dashboard: TestServer, browsers: Browsers
) -> None:
    account = await new_account(servers)
    browser = browsers()
    await browser.login(account)
    session = session_of(dashboard, browser)
    # The password changes elsewhere (every refresh token is revoked) and the access token runs out.
    await account.client.change_password(account.password, "a brand new password")
    stale = session.client.tokens.load()
    assert stale is not None
    expired = servers.issue_access_token(session.user.id, ttl_seconds=-60)
    session.client.tokens.save(Tokens(access_token=expired, refresh_token=stale.refresh_token))
    status, body = await browser.get("/api/tasks")
    assert status == 401 and body["error"]["code"] == "UNAUTHENTICATED"
    assert session.closed and (await browser.get("/api/session"))[1]["user"] is None


async def test_logs_name_the_user_and_never_a_secret(
    servers: MediadlServers, dashboard: TestServer, browsers: Browsers, caplog: pytest.LogCaptureFixture
) -> None:
    install_context_stamping()  # as configure_logging does in production: records get the context's user id
    account = await new_account(servers)
    browser = browsers()
    with caplog.at_level(logging.DEBUG):
        await browser.login(account)
        tokens = session_of(dashboard, browser).client.tokens.load()
        assert tokens is not None
        await browser.post(f"/api/tasks/{(await new_task(account.client)).id}/cancel")
        await browser.post("/api/logout")
    user_id = browser.user["id"] if browser.user else ""
    messages = [record.getMessage() for record in caplog.records]
    assert f"session opened for user {user_id}" in messages
    assert any(getattr(r, "user_id", None) == user_id and "closed (logout)" in r.getMessage() for r in caplog.records)
    text = "\n".join(messages)
    for secret in (account.password, tokens.access_token, tokens.refresh_token, browser.csrf):
        assert secret not in text
