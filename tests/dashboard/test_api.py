"""The dashboard's JSON API over HTTP (aiohttp's test server) against both real gRPC servers: login and
cookies, CSRF refusals, security headers, task and failure endpoints, logout and session expiry."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from http.cookies import SimpleCookie

import pytest
from aiohttp.test_utils import TestServer

from clients import AuthenticationError, FailureStatus, MemoryTokenStore, TaskStatus, Tokens
from clients.testing import MediadlServers
from dashboard.security import LOGIN_COOKIE, SESSION_COOKIE, SESSIONS
from dashboard.sessions import UserSession, refresh_token_expiry
from mediadl_common.log import install_context_stamping
from tests.dashboard.conftest import FakeClock, MakeDashboard
from tests.dashboard.helpers import Browser, dashboard_settings, new_account, new_task
from tests.dashboard.test_static import InlineFinder

pytestmark = pytest.mark.asyncio(loop_scope="module")

Browsers = Callable[[], Browser]


def session_of(dashboard: TestServer, browser: Browser) -> UserSession:
    """The server-side session behind a browser's cookie (to look at what the browser must never see)."""
    cookie = browser.cookie(SESSION_COOKIE)
    assert cookie is not None
    session = dashboard.app[SESSIONS].peek(cookie.rpartition(".")[0])
    assert session is not None
    return session


# Page, headers and static files


async def test_page_and_files_are_served_with_a_strict_policy(browsers: Browsers) -> None:
    browser = browsers()
    for path in ("/", "/static/js/app.js", "/static/app.css", "/api/session", "/no/such/page"):
        async with browser.session.get(browser.url(path)) as resp:
            csp = resp.headers.get("Content-Security-Policy", "")
            assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["X-Frame-Options"] == "DENY"
            if path.startswith("/api/"):
                assert resp.headers["Cache-Control"] == "no-store"
            elif path.startswith("/static/"):
                assert resp.headers["Cache-Control"] == "no-cache"
    async with browser.session.get(browser.url("/")) as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        finder = InlineFinder()
        finder.feed(await resp.text())
    assert finder.inline == []  # the CSP would block them: everything is in files
    async with browser.session.get(browser.url("/static/")) as resp:
        assert resp.status in (403, 404)  # no directory listing


# Login, cookie, session


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


async def test_state_changing_requests_without_the_right_csrf_token_are_refused(
    servers: MediadlServers, browsers: Browsers
) -> None:
    account = await new_account(servers)
    browser, intruder = browsers(), browsers()
    await browser.login(account)
    await intruder.login(await new_account(servers))
    task = await new_task(account.client)
    failure = await account.client.create_failure(task.id, error_type="http", http_status=503, segment_index=1)
    attempts = [
        (
            "POST",
            "/api/tasks",
            {"liveroom_id": "r", "resource_url": "https://x.example.com/a.mp4", "resource_type": "MP4"},
        ),
        ("POST", f"/api/tasks/{task.id}/cancel", None),
        ("DELETE", f"/api/tasks/{task.id}", None),
        ("POST", f"/api/failures/{failure.id}/abandon", None),
        ("POST", "/api/logout", None),
    ]
    for method, path, body in attempts:
        for token in ("", "wrong", intruder.csrf):
            status, answer = await browser.request(method, path, json_body=body, csrf=token)
            assert status == 403 and answer["error"]["code"] == "CSRF_FAILED", (method, path, token)
        # The right token from another origin is refused too.
        status, _ = await browser.request(method, path, json_body=body, headers={"Origin": "http://evil.example"})
        assert status == 403, (method, path)

    # Nothing happened: same tasks, same states, still logged in.
    assert (await account.client.list_tasks()).total_size == 1
    assert (await account.client.get_task(task.id)).status is TaskStatus.PENDING
    assert (await account.client.get_failure(failure.id)).status is FailureStatus.PENDING
    assert (await browser.get("/api/session"))[1]["user"] is not None
    # And with the right token (and a same-origin Origin) it works.
    origin = f"http://{browser.base.host}:{browser.base.port}"
    status, body = await browser.post(f"/api/tasks/{task.id}/cancel", headers={"Origin": origin})
    assert status == 200 and body["task"]["status"] == "CANCELLED"


# Tasks, failures, videos


async def test_create_list_detail_and_delete(servers: MediadlServers, browsers: Browsers) -> None:
    account = await new_account(servers)
    browser = browsers()
    await browser.login(account)
    status, created = await browser.post(
        "/api/tasks",
        {
            "liveroom_id": "room7",
            "liveroom_title": "Late show",
            "resource_url": " https://cdn.example.com/show/index.m3u8 ",
            "resource_type": "hls",
        },
    )
    assert status == 201, created
    task = created["task"]
    assert (task["status"], task["resource_type"], task["liveroom_title"]) == ("PENDING", "HLS", "Late show")
    assert task["resource_url"] == "https://cdn.example.com/show/index.m3u8"
    assert uuid.UUID(task["video_id"])  # made up for the user, since the form left it empty

    others = [await new_task(account.client, title=f"t{i}") for i in range(3)]
    status, page = await browser.get("/api/tasks?page_size=2")
    assert status == 200 and page["total_size"] == 4 and len(page["tasks"]) == 2 and page["next_page_token"]
    status, rest = await browser.get(f"/api/tasks?page_size=2&page_token={page['next_page_token']}")
    listed = [t["id"] for t in page["tasks"] + rest["tasks"]]
    assert sorted(listed) == sorted([task["id"], *(t.id for t in others)])
    status, only = await browser.get("/api/tasks?status=CANCELLED")
    assert status == 200 and only["tasks"] == []

    failure = await account.client.create_failure(task["id"], error_type="http", http_status=404, segment_index=3)
    video = await account.client.create_video(task["id"], file_path="hls/x/index.m3u8", file_size=2048, format="hls")
    status, detail = await browser.get(f"/api/tasks/{task['id']}")
    assert status == 200 and detail["task"]["id"] == task["id"] and detail["failures_total"] == 1
    assert [(f["id"], f["segment_index"], f["http_status"]) for f in detail["failures"]] == [(failure.id, 3, 404)]
    assert [(v["id"], v["file_size"], v["format"]) for v in detail["videos"]] == [(video.id, 2048, "hls")]

    status, body = await browser.post(f"/api/failures/{failure.id}/abandon", {"task_id": task["id"]})
    assert status == 200 and body["failure"]["status"] == "ABANDONED"

    status, body = await browser.request("DELETE", f"/api/tasks/{task['id']}?delete_files=true")
    assert status == 200 and body == {"deleted": task["id"], "delete_files": True}
    assert (await browser.get(f"/api/tasks/{task['id']}"))[0] == 404
    assert (await account.client.list_tasks()).total_size == 3


async def test_bad_input_is_a_400_naming_the_field(servers: MediadlServers, browsers: Browsers) -> None:
    account = await new_account(servers)
    browser = browsers()
    await browser.login(account)
    good = {"liveroom_id": "room1", "resource_url": "https://cdn.example.com/a.mp4", "resource_type": "MP4"}
    cases = [
        ({**good, "resource_type": "FLV"}, "resource_type"),
        ({**good, "resource_url": "ftp://cdn.example.com/a.mp4"}, "resource_url"),
        ({**good, "liveroom_id": "x" * 21}, "liveroom_id"),
        ({**good, "video_id": "not-a-uuid"}, "video_id"),
        ({**good, "liveroom_title": 42}, "liveroom_title"),
    ]
    for body, field in cases:
        status, answer = await browser.post("/api/tasks", body)
        assert status == 400, (field, answer)
        assert field in [f["field"] for f in answer["error"]["fields"]], (field, answer)
    async with browser.session.post(
        browser.url("/api/tasks"),
        data=b"{not json",
        headers={"X-CSRF-Token": browser.csrf, "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
    for query, field in (("page_size=0", "page_size"), ("page_size=abc", "page_size"), ("status=DONE", "status")):
        status, answer = await browser.get(f"/api/tasks?{query}")
        assert status == 400 and answer["error"]["fields"][0]["field"] == field
    status, answer = await browser.get("/api/tasks/not-a-uuid")
    assert status == 400 and answer["error"]["fields"][0]["field"] == "task_id"
    assert (await account.client.list_tasks()).total_size == 0


async def test_actions_follow_the_state_table_and_ownership(servers: MediadlServers, browsers: Browsers) -> None:
    owner, stranger = await new_account(servers), await new_account(servers)
    browser, other = browsers(), browsers()
    await browser.login(owner)
    await other.login(stranger)
    task = await new_task(owner.client)

    status, body = await browser.post(f"/api/tasks/{task.id}/pause")
    assert status == 409 and "PENDING" in body["error"]["message"]
    assert (await browser.post(f"/api/tasks/{task.id}/explode"))[0] == 404
    # Someone else's task does not exist for them, whatever they try.
    assert (await other.get(f"/api/tasks/{task.id}"))[0] == 404
    assert (await other.post(f"/api/tasks/{task.id}/cancel"))[0] == 404
    assert (await other.request("DELETE", f"/api/tasks/{task.id}"))[0] == 404
    assert (await other.get("/api/tasks"))[1]["total_size"] == 0

    status, body = await browser.post(f"/api/tasks/{task.id}/cancel")
    assert status == 200 and body["task"]["status"] == "CANCELLED"
    assert (await owner.client.get_task(task.id)).status is TaskStatus.CANCELLED


# Logout and expiry


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
