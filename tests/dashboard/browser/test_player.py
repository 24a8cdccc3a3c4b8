"""Recordings in the dashboard (headless Chromium): the thumbnail shows, the MP4 plays in a <video> fed through
the dashboard's Range route, an HLS recording plays through the vendored hls.js, and the download link works."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from clients import AsyncClient, OutputFormat, ResourceType, TaskStatus
from clients.testing import MediadlServers
from dashboard.app import RunningDashboard
from tests.dashboard.browser.support import WAIT_MS, Screen
from tests.dashboard.helpers import new_account
from tests.support.origin import Origin

pytestmark = pytest.mark.asyncio(loop_scope="module")

THUMBNAIL = "() => { const i = document.querySelector('#video-recordings img.thumbnail'); return i?.naturalWidth > 0; }"
PLAYING = "(selector) => { const v = document.querySelector(selector); return v !== null && v.readyState >= 2; }"


async def finished(client: AsyncClient, url: str, output: OutputFormat = OutputFormat.UNSPECIFIED) -> str:
    task = await client.create_task(
        video_id=str(uuid.uuid4()), liveroom_id="room", liveroom_title="played", resource_url=url,
        resource_type=ResourceType.HLS, output_format=output,
    )  # fmt: skip
    async with client.start(task.id) as events:
        assert [e async for e in events][-1].status is TaskStatus.COMPLETED
    return task.id


async def open_detail(screen: Screen, task_id: str) -> None:
    await screen.page.click(f"{screen.row(task_id)} button[data-action=details]")
    await screen.page.wait_for_selector("#video-recordings .recording", timeout=WAIT_MS)


async def test_an_mp4_recording_shows_its_thumbnail_plays_and_downloads(
    servers: MediadlServers, started_dashboard: RunningDashboard, origin: Origin, screen: Screen
) -> None:
    account = await new_account(servers)
    task_id = await finished(account.client, origin.url("hls_ts/index.m3u8"), OutputFormat.MP4)
    await screen.login(started_dashboard.url, account)
    await screen.wait_row_status(task_id, "COMPLETED")
    await open_detail(screen, task_id)
    page = screen.page

    await page.wait_for_function(THUMBNAIL, timeout=WAIT_MS)
    await page.wait_for_function(PLAYING, arg="#video-recordings video.player", timeout=WAIT_MS)
    await screen.shot("player-mp4")

    async with page.expect_download(timeout=WAIT_MS) as waiting:
        await page.click("#video-recordings a.download")
    download = await waiting.value
    saved = await download.path()
    video = (await account.client.list_task_videos(task_id)).items[0]
    assert (
        hashlib.sha256(saved.read_bytes()).hexdigest()
        == hashlib.sha256((servers.storage_dir / video.file_path).read_bytes()).hexdigest()
    )
    assert screen.csp_violations() == []


async def test_an_hls_recording_plays_through_hls_js(
    servers: MediadlServers, started_dashboard: RunningDashboard, origin: Origin, screen: Screen
) -> None:
    account = await new_account(servers)
    task_id = await finished(account.client, origin.url("hls_fmp4/index.m3u8"))
    await screen.login(started_dashboard.url, account)
    await screen.wait_row_status(task_id, "COMPLETED")
    await open_detail(screen, task_id)
    await screen.page.wait_for_function(PLAYING, arg="#video-recordings video.player", timeout=WAIT_MS)
    assert screen.csp_violations() == []
