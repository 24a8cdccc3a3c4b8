"""Test helpers: dashboard settings, a scripted "browser" over HTTP (cookies + CSRF), and an SSE reader."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from yarl import URL

from clients import AsyncClient, ResourceType, Task
from clients.testing import TEST_PASSWORD, MediadlServers
from dashboard.config import DashboardSettings
from dashboard.security import SESSION_COOKIE, SESSIONS
from dashboard.sessions import UserSession

SECRET = b"dashboard-test-secret-0123456789abcdef"
CSRF_HEADER = "X-CSRF-Token"
STREAM_TIMEOUT = 30.0  # a bound on waiting for events, so a broken stream fails the test instead of hanging it


def dashboard_settings(**overrides: Any) -> DashboardSettings:
    values: dict[str, Any] = {"session_secret": SECRET, "host": "127.0.0.1", "port": 0, "shutdown_grace_seconds": 0}
    values.update(overrides)
    return DashboardSettings(**values)


@dataclass
class Account:
    email: str
    username: str
    password: str
    client: AsyncClient  # the same user through the client library, to arrange and check things


async def new_account(servers: MediadlServers) -> Account:
    name = f"user_{uuid.uuid4().hex[:10]}"
    client = await servers.logged_in_client(username=name)
    return Account(f"{name}@example.com", name, TEST_PASSWORD, client)


async def new_task(client: AsyncClient, *, title: str = "Friday stream", url: str = "") -> Task:
    return await client.create_task(
        video_id=str(uuid.uuid4()),
        liveroom_id="room1",
        liveroom_title=title,
        resource_url=url or "https://media.example.com/live/index.m3u8",
        resource_type=ResourceType.HLS,
    )


@dataclass
class Browser:
    """One browser: its own cookie jar, and the CSRF token the page would hold."""

    base: URL
    session: aiohttp.ClientSession
    csrf: str = ""
    user: dict[str, Any] | None = None

    @classmethod
    def open(cls, base: URL) -> Browser:
        # unsafe=True: keep cookies for an IP-address host (127.0.0.1), as a browser does.
        return cls(base, aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)))

    async def close(self) -> None:
        await self.session.close()

    def url(self, path: str) -> URL:
        return self.base.join(URL(path))

    async def request(
        self, method: str, path: str, *, json_body: Any = None, csrf: str | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        token = self.csrf if csrf is None else csrf
        if method != "GET" and token:
            headers[CSRF_HEADER] = token
        async with self.session.request(method, self.url(path), json=json_body, headers=headers, **kwargs) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body

    async def get(self, path: str) -> tuple[int, Any]:
        return await self.request("GET", path)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("POST", path, json_body=body, **kwargs)

    async def login(self, account: Account) -> dict[str, Any]:
        status, session = await self.get("/api/session")
        assert status == 200 and session["user"] is None, session
        self.csrf = session["csrf_token"]
        status, body = await self.post("/api/login", {"email": account.email, "password": account.password})
        assert status == 200, body
        self.csrf, self.user = body["csrf_token"], body["user"]
        return dict(body)

    def cookie(self, name: str) -> str | None:
        morsel = self.session.cookie_jar.filter_cookies(self.base).get(name)
        return morsel.value if morsel is not None else None


@dataclass
class EventStream:
    """GET /api/events read message by message (event name, parsed data)."""

    response: aiohttp.ClientResponse
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)

    async def next(self) -> tuple[str, Any]:
        event, data = "message", ""
        while True:
            line = (await self.response.content.readline()).decode()
            if line == "":
                raise EOFError("the event stream ended")
            line = line.rstrip("\n")
            if line == "":
                if data:
                    return event, json.loads(data)
                event = "message"
                continue
            name, _, value = line.partition(":")
            if name == "event":
                event = value.strip()
            elif name == "data":
                data += value.strip()

    async def until(self, done: Callable[[EventStream], bool]) -> None:
        """Read `tasks` messages (folding them into `latest`) until `done(self)` holds; `end` raises."""
        async with asyncio.timeout(STREAM_TIMEOUT):
            while not done(self):
                event, data = await self.next()
                if event == "end":
                    raise EOFError(f"stream ended: {data}")
                for item in data:
                    if item.get("removed"):
                        self.removed.add(item["task_id"])
                        self.latest.pop(item["task_id"], None)
                    else:
                        self.latest[item["task_id"]] = item

    def close(self) -> None:
        self.response.close()


async def open_events(browser: Browser) -> EventStream:
    response = await browser.session.get(browser.url("/api/events"), timeout=aiohttp.ClientTimeout(total=None))
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return EventStream(response)


def session_of(dashboard: TestServer, browser: Browser) -> UserSession:
    """The server-side session behind a browser's cookie (to look at what the browser must never see)."""
    cookie = browser.cookie(SESSION_COOKIE)
    assert cookie is not None
    session = dashboard.app[SESSIONS].peek(cookie.rpartition(".")[0])
    assert session is not None
    return session
