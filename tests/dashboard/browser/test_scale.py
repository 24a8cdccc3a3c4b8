"""The dashboard in headless Chromium at 1,000 tasks: paged, every task listed once, the event stream's
1,000 current states absorbed, and a download started elsewhere followed live."""

from __future__ import annotations

import asyncio

import pytest

from clients.testing import MediadlServers
from dashboard.app import RunningDashboard
from tests.dashboard.browser.support import PLAYLIST, WAIT_MS, Screen
from tests.dashboard.helpers import new_account, new_task
from tests.support.origin import Origin

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_thousand_tasks_stay_paged_and_live(
    servers: MediadlServers, started_dashboard: RunningDashboard, origin: Origin, screen: Screen
) -> None:
    account = await new_account(servers)
    limit = asyncio.Semaphore(32)

    async def create(index: int) -> None:
        async with limit:
            await new_task(account.client, title=f"bulk {index:04d}")

    await asyncio.gather(*(create(i) for i in range(1000)))
    page = screen.page
    await screen.login(started_dashboard.url, account)
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
