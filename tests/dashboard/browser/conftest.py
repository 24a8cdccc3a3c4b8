"""Fixtures of the browser tests: Chromium (skipped with the reason when missing, failing under CI=true), the
dashboard as `python -m dashboard` starts it, and one fresh browser context per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from clients.testing import MediadlServers
from dashboard.app import RunningDashboard, start_dashboard
from dashboard.upstream import Upstream
from tests.conftest import IN_CI
from tests.dashboard.browser.support import CHROMIUM, CHROMIUM_ARGS, Screen, browser_unavailable
from tests.dashboard.helpers import dashboard_settings

if TYPE_CHECKING:
    from playwright.async_api import Browser


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium() -> AsyncIterator[Browser]:
    reason = browser_unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason} (under CI=true the browser tests never skip)")
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        # launch() gives every run a fresh temporary profile (its own --user-data-dir), removed at close.
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def started_dashboard(servers: MediadlServers) -> AsyncIterator[RunningDashboard]:
    """The dashboard as `python -m dashboard` starts it (start_dashboard), on a free port."""
    upstream = Upstream(servers.auth_addr, servers.download_addr)
    running = await start_dashboard(dashboard_settings(), upstream=upstream)
    yield running
    await running.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where this test's screenshots go: the test's tmp dir, or $DASHBOARD_SCREENSHOT_DIR to keep them."""
    directory = Path(os.environ.get("DASHBOARD_SCREENSHOT_DIR") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest_asyncio.fixture(loop_scope="module")
async def screen(chromium: Browser, shots: Path) -> AsyncIterator[Screen]:
    context = await chromium.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    yield Screen(context, page, shots)
    await context.close()
