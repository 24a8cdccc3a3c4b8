"""The dashboard in headless Chromium (Debian's chromium driven by Playwright) against the real servers and a
local media origin: the whole flow of issue 10, a hostile title rendered as text, and 1,000 tasks.

Screenshots of the main states are saved under the test's tmp dir (or $DASHBOARD_SCREENSHOT_DIR) and their
paths printed (`pytest -s` or `-rA` shows them). Assertions are on the DOM, never on pixels.
Without Chromium or Playwright these tests skip with the reason; under CI=true they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from clients import ResourceType
from clients.testing import MediadlServers
from dashboard.app import RunningDashboard, start_dashboard
from dashboard.upstream import Upstream
from tests.conftest import IN_CI
from tests.dashboard.helpers import Account, dashboard_settings, new_account, new_task
from tests.support.origin import Origin

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = os.environ.get("DASHBOARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PLAYLIST = "hls_ts/index.m3u8"
WAIT_MS = 30_000  # upper bound for a DOM state to appear; a working page gets there far sooner
HOSTILE_TITLE = "<img src=x onerror=alert(1)>"


def browser_unavailable() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).is_file():
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium chromium-driver)"
    return None


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
async def dashboard(servers: MediadlServers) -> AsyncIterator[RunningDashboard]:
    """The dashboard as `python -m dashboard` starts it (start_dashboard), on a free port."""
    upstream = Upstream(servers.auth_addr, servers.download_addr)
    running = await start_dashboard(dashboard_settings(), upstream=upstream)
    yield running
    await running.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def origin(media_fixtures: Path, tmp_path: Path) -> AsyncIterator[Origin]:
    async with Origin.serving(media_fixtures, tmp_path) as running:
        yield running


class Screen:
    """One browser tab with what it reported: dialogs (alert()), console messages, page errors."""

    def __init__(self, context: BrowserContext, page: Page, shots: Path) -> None:
        self.context = context
        self.page = page
        self.shots = shots
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._on_dialog)
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    async def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    async def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line]

    async def login(self, url: str, account: Account) -> None:
        await self.page.goto(url)
        await self.page.wait_for_selector("#login-view:not([hidden])", timeout=WAIT_MS)
        await self.page.fill("#login-form input[name=email]", account.email)
        await self.page.fill("#login-form input[name=password]", account.password)
        await self.page.click("#login-form button[type=submit]")
        await self.page.wait_for_selector("#dashboard-view:not([hidden])", timeout=WAIT_MS)

    def row(self, task_id: str) -> str:
        return f'#task-rows tr[data-task-id="{task_id}"]'

    async def wait_row_status(self, task_id: str, status: str) -> None:
        await self.page.wait_for_selector(f'{self.row(task_id)}[data-status="{status}"]', timeout=WAIT_MS)


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


async def test_login_create_watch_pause_resume_failures_logout(
    servers: MediadlServers, dashboard: RunningDashboard, origin: Origin, screen: Screen
) -> None:
    account = await new_account(servers)
    page = screen.page
    await screen.shot("01-login-form")
    await screen.login(dashboard.url, account)
    assert await page.text_content("#whoami") == account.username
    await page.wait_for_selector('#connection[data-state="live"]', timeout=WAIT_MS)

    # The download will stop at segment 2 until we let it go, and segment 4 is missing until healed.
    gate = origin.gate("hls_ts/seg02.ts")
    origin.fail("hls_ts/seg04.ts", status=404)
    await page.click("#create-panel summary")
    await page.fill("#create-form input[name=resource_url]", origin.url(PLAYLIST))
    await page.select_option("#create-form select[name=resource_type]", "HLS")
    await page.fill("#create-form input[name=liveroom_id]", "room42")
    await page.fill("#create-form input[name=liveroom_title]", "Browser test stream")
    await screen.shot("02-create-form")
    await page.click("#create-form button[type=submit]")
    created = page.locator("#task-rows tr", has=page.locator("td.title", has_text="Browser test stream"))
    await created.wait_for(timeout=WAIT_MS)
    [task] = (await account.client.list_tasks()).items
    assert await created.get_attribute("data-task-id") == task.id
    row = screen.row(task.id)
    assert await page.text_content(f"{row} td.liveroom") == "room42"
    assert await page.text_content(f"{row} td.type") == "HLS"
    # A marker that a reload would wipe out: everything below must arrive live, through the event stream.
    await page.evaluate("window.__sameDocument = true")

    await screen.wait_row_status(task.id, "PROCESSING")
    # Segments are fetched side by side: all but the held and the missing one finish, live on the page,
    # while progress events keep coming (the sparkline gets its samples).
    await page.wait_for_selector(f"{row} td.segments:text-is('4/6 (1 failed)')", timeout=WAIT_MS)
    assert await page.eval_on_selector(f"{row} progress", "bar => bar.value") >= 0.6
    await page.wait_for_function(
        "([sel]) => Number(document.querySelector(sel + ' canvas.sparkline').dataset.samples) >= 2",
        arg=[row],
        timeout=WAIT_MS,
    )
    await screen.shot("03-downloading")

    await page.click(f"{row} button[data-action=pause]")
    await screen.wait_row_status(task.id, "PAUSED")
    assert await page.is_enabled(f"{row} button[data-action=resume]")
    assert not await page.is_enabled(f"{row} button[data-action=pause]")
    await screen.shot("04-paused")
    gate.set()
    await page.click(f"{row} button[data-action=resume]")
    await screen.wait_row_status(task.id, "PARTIAL_COMPLETED")
    assert await page.text_content(f"{row} td.segments") == "5/6 (1 failed)"
    await screen.shot("05-partial")

    # The failures, in the detail view; retrying the healed segment completes the download.
    await page.click(f"{row} button[data-action=details]")
    failure_row = "#failure-rows tr[data-status=PENDING]"
    await page.wait_for_selector(failure_row, timeout=WAIT_MS)
    cells = await page.locator(f"{failure_row} td").all_text_contents()
    assert cells[0] == "4" and cells[3] == "404" and "seg04.ts" in cells[1]
    await screen.shot("06-failures")
    origin.heal("hls_ts/seg04.ts")
    await page.click(f"{failure_row} button[data-failure-action=retry]")
    await page.wait_for_selector("#failure-rows tr[data-status=RESOLVED]", timeout=WAIT_MS)
    await page.wait_for_selector("#detail-fields[data-status=COMPLETED]", timeout=WAIT_MS)
    await page.wait_for_selector("#video-fields dd", timeout=WAIT_MS)
    assert "hls" in await page.locator("#video-fields dd").all_text_contents()
    await screen.shot("07-detail-completed")
    await page.click("#detail-close")

    await screen.wait_row_status(task.id, "COMPLETED")
    assert await page.eval_on_selector(f"{row} progress", "bar => bar.value") == 1
    assert await page.text_content(f"{row} td.progress .percent") == "100%"
    assert await page.evaluate("window.__sameDocument === true")
    await screen.shot("08-completed")

    # Delete asks first: keeping changes nothing; confirming (with the files) removes task and files.
    files = servers.storage_dir / "hls" / task.id
    assert await asyncio.to_thread(files.is_dir)
    await page.click(f"{row} button[data-action=delete]")
    await page.wait_for_selector("#confirm-delete[open]", timeout=WAIT_MS)
    assert await page.text_content("#confirm-name") == "Browser test stream"
    await page.click("#confirm-delete button[value=keep]")
    await page.wait_for_selector("#confirm-delete", state="hidden", timeout=WAIT_MS)
    assert await page.locator(row).count() == 1
    await page.click(f"{row} button[data-action=delete]")
    await page.check("#delete-files")
    await screen.shot("09-confirm-delete")
    await page.click("#confirm-delete-button")
    await page.wait_for_selector(row, state="detached", timeout=WAIT_MS)
    await page.wait_for_selector("#empty:not([hidden])", timeout=WAIT_MS)
    assert (await account.client.list_tasks()).total_size == 0
    assert not await asyncio.to_thread(files.exists)

    await page.click("#logout")
    await page.wait_for_selector("#login-view:not([hidden])", timeout=WAIT_MS)
    await page.wait_for_selector('#connection[data-state="offline"]', timeout=WAIT_MS)
    assert not [c for c in await screen.context.cookies() if c["name"] == "mediadl_session"]
    response = await page.request.get(f"{dashboard.url}/api/tasks")
    assert response.status == 401
    await screen.shot("10-logged-out")
    assert screen.csp_violations() == [] and screen.errors == [] and screen.dialogs == []


async def test_markup_in_user_strings_renders_as_text(
    servers: MediadlServers, dashboard: RunningDashboard, screen: Screen
) -> None:
    account = await new_account(servers)
    task = await account.client.create_task(
        video_id=str(uuid.uuid4()),
        liveroom_id="<b>bold</b>",
        liveroom_title=HOSTILE_TITLE,
        liveroom_url="https://example.com/?q=<script>alert(2)</script>",
        resource_url="https://example.com/a.mp4",
        resource_type=ResourceType.MP4,
    )
    await account.client.create_failure(task.id, error_type="<svg onload=alert(3)>", error_message="<i>x</i>")
    page = screen.page
    await screen.login(dashboard.url, account)
    row = screen.row(task.id)
    await page.wait_for_selector(row, timeout=WAIT_MS)
    assert await page.text_content(f"{row} td.title") == HOSTILE_TITLE
    assert await page.text_content(f"{row} td.liveroom") == "<b>bold</b>"
    await page.click(f"{row} button[data-action=details]")
    await page.wait_for_selector("#failure-rows tr", timeout=WAIT_MS)
    assert await page.text_content("#detail-title") == HOSTILE_TITLE
    assert "<svg onload=alert(3)>: <i>x</i>" in await page.locator("#failure-rows td").all_text_contents()
    assert (
        "https://example.com/?q=<script>alert(2)</script>"
        in await page.locator("#detail-fields dd").all_text_contents()
    )
    await screen.shot("xss-as-text")
    # Nothing was parsed as markup, nothing ran, and the CSP had nothing to block.
    for tag in ("img", "b", "svg", "i", "script"):
        assert await page.locator(f"#task-rows {tag}, #detail {tag}").count() == 0, tag
    assert screen.dialogs == [] and screen.csp_violations() == [] and screen.errors == []


async def test_a_thousand_tasks_stay_paged_and_live(
    servers: MediadlServers, dashboard: RunningDashboard, origin: Origin, screen: Screen
) -> None:
    account = await new_account(servers)
    limit = asyncio.Semaphore(32)

    async def create(index: int) -> None:
        async with limit:
            await new_task(account.client, title=f"bulk {index:04d}")

    await asyncio.gather(*(create(i) for i in range(1000)))
    page = screen.page
    await screen.login(dashboard.url, account)
    # Every task's current state has arrived over the event stream; the table holds one page of rows.
    await page.wait_for_selector('#tasks[data-known-tasks="1000"]', timeout=WAIT_MS)
    assert await page.locator("#task-rows tr").count() == 50
    assert await page.text_content("#task-count") == "1000 tasks"
    assert await page.text_content("#page-info") == "Page 1 of 20"
    await page.select_option("#page-size", "100")
    await page.wait_for_selector("#page-info:text('Page 1 of 10')", timeout=WAIT_MS)
    titles = await page.locator("#task-rows td.title").all_text_contents()
    for number in range(2, 11):
        await page.click("#next-page")
        await page.wait_for_selector(f"#page-info:text('Page {number} of 10')", timeout=WAIT_MS)
        rows = page.locator("#task-rows td.title")
        assert await rows.count() == 100
        titles += await rows.all_text_contents()
    assert await page.is_disabled("#next-page")
    assert sorted(titles) == [f"bulk {i:04d}" for i in range(1000)]  # every task once, across the pages
    await screen.shot("thousand-last-page")
    await page.click("#prev-page")
    await page.wait_for_selector("#page-info:text('Page 9 of 10')", timeout=WAIT_MS)

    # A download started elsewhere (the CLI, say) shows up on page 1 by its events, and is followed live.
    # (Creating alone sends no event: such a task appears at the next reload of the list.)
    await page.select_option("#page-size", "50")
    await page.wait_for_selector("#page-info:text('Page 1 of 20')", timeout=WAIT_MS)
    fresh = await new_task(account.client, title="from the CLI", url=origin.url(PLAYLIST))
    async with account.client.start(fresh.id) as events:
        await anext(events)
    await screen.wait_row_status(fresh.id, "COMPLETED")
    assert await page.text_content("#task-count") == "1001 tasks"
    await screen.shot("thousand-live")
    assert screen.errors == []


async def test_a_missing_browser_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # The reason the tests skip (or, under CI, fail) with: never a bare "no browser".
    monkeypatch.setattr(f"{__name__}.CHROMIUM", "/nonexistent/chromium")
    assert browser_unavailable() == (
        "Chromium not found at /nonexistent/chromium (apt-get install chromium chromium-driver)"
    )
