"""Browser-test support: Debian's Chromium for Playwright, and a Screen (one tab plus what it reported)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.dashboard.helpers import Account

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page

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
