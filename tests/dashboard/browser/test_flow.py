"""The dashboard in headless Chromium (Debian's chromium driven by Playwright) against the real servers and a
local media origin: the whole flow of issue 10, and hostile strings rendered as text.

Screenshots of the main states are saved under the test's tmp dir (or $DASHBOARD_SCREENSHOT_DIR) and their
paths printed (`pytest -s` or `-rA` shows them). Assertions are on the DOM, never on pixels.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from clients import ResourceType
from clients.testing import MediadlServers
from dashboard.app import RunningDashboard
from tests.dashboard.browser.support import HOSTILE_TITLE, PLAYLIST, WAIT_MS, Screen, browser_unavailable
from tests.dashboard.helpers import new_account
from tests.support.origin import Origin

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_login_create_watch_pause_resume_failures_logout(
    servers: MediadlServers, started_dashboard: RunningDashboard, origin: Origin, screen: Screen
) -> None:
    account = await new_account(servers)
    page = screen.page
    await screen.shot("01-login-form")
    await screen.login(started_dashboard.url, account)
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
    response = await page.request.get(f"{started_dashboard.url}/api/tasks")
    assert response.status == 401
    await screen.shot("10-logged-out")
    assert screen.csp_violations() == [] and screen.errors == [] and screen.dialogs == []


async def test_markup_in_user_strings_renders_as_text(
    servers: MediadlServers, started_dashboard: RunningDashboard, screen: Screen
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
    await screen.login(started_dashboard.url, account)
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


async def test_a_missing_browser_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # The reason the tests skip (or, under CI, fail) with: never a bare "no browser".
    monkeypatch.setattr("tests.dashboard.browser.support.CHROMIUM", "/nonexistent/chromium")
    assert browser_unavailable() == (
        "Chromium not found at /nonexistent/chromium (apt-get install chromium chromium-driver)"
    )
