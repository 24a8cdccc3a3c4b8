"""Fixtures of the dashboard tests: both gRPC servers (one pair per module: each test makes its own users),
the dashboard app on aiohttp's test server in front of them, and a local media origin."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from clients.testing import MediadlServers, mediadl_servers
from dashboard.app import create_app
from dashboard.upstream import Upstream
from tests.dashboard.helpers import Browser, dashboard_settings
from tests.support.origin import Origin

MakeDashboard = Callable[..., Awaitable[TestServer]]


class FakeClock:
    """The wall clock, plus an offset a test can move forward (to expire sessions without waiting)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MediadlServers]:
    async with mediadl_servers(tmp_path_factory.mktemp("mediadl")) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def make_dashboard(
    servers: MediadlServers, clock: FakeClock
) -> AsyncIterator[Callable[..., Awaitable[TestServer]]]:
    """Factory: the dashboard app (settings overridden by keyword) on aiohttp's test server, which cancels
    handlers of vanished clients as production does. Stopped afterwards."""
    started: list[TestServer] = []

    async def make(**overrides: Any) -> TestServer:
        upstream = Upstream(servers.auth_addr, servers.download_addr)
        server = TestServer(create_app(dashboard_settings(**overrides), upstream=upstream, clock=clock))
        await server.start_server()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.close()


@pytest_asyncio.fixture(loop_scope="module")
async def dashboard(make_dashboard: MakeDashboard) -> TestServer:
    return await make_dashboard()


@pytest_asyncio.fixture(loop_scope="module")
async def browsers(dashboard: TestServer) -> AsyncIterator[Callable[[], Browser]]:
    """Factory of independent browsers (own cookie jars) on the dashboard; all closed afterwards."""
    opened: list[Browser] = []

    def new_browser() -> Browser:
        browser = Browser.open(dashboard.make_url("/"))
        opened.append(browser)
        return browser

    yield new_browser
    for browser in opened:
        await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def origin(media_fixtures: Path, tmp_path: Path) -> AsyncIterator[Origin]:
    """A local HTTP origin serving a copy of the media fixtures (faults switchable per path)."""
    async with Origin.serving(media_fixtures, tmp_path) as running:
        yield running
