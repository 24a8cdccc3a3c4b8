"""The dashboard's recording routes over HTTP: byte ranges of the media (as <video> asks), whole files, the
thumbnail, an HLS recording's files, download headers, and nothing of another user's."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from clients import ResourceType, TaskStatus
from clients.testing import MediadlServers
from tests.dashboard.helpers import Browser, new_account
from tests.support.origin import Origin

pytestmark = pytest.mark.asyncio(loop_scope="module")

Browsers = Callable[[], Browser]


async def fetch(browser: Browser, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with browser.session.get(browser.url(path), headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def test_media_ranges_thumbnail_files_and_ownership(
    servers: MediadlServers, browsers: Browsers, origin: Origin
) -> None:
    account = await new_account(servers)
    task = await account.client.create_task(
        video_id=str(uuid.uuid4()), liveroom_id="room", resource_url=origin.url("mp4/clip.mp4"),
        resource_type=ResourceType.MP4,
    )  # fmt: skip
    async with account.client.start(task.id) as events:
        assert [e async for e in events][-1].status is TaskStatus.COMPLETED
    clip = (origin.root / "mp4/clip.mp4").read_bytes()
    browser = browsers()
    await browser.login(account)
    media = f"/api/videos/{task.video_id}/media"

    status, headers, body = await fetch(browser, media)
    assert (status, body, headers["Content-Type"], headers["Accept-Ranges"]) == (200, clip, "video/mp4", "bytes")
    status, headers, body = await fetch(browser, media, Range="bytes=100-1123")
    assert (status, body, headers["Content-Range"]) == (206, clip[100:1124], f"bytes 100-1123/{len(clip)}")
    status, _, body = await fetch(browser, media, Range="bytes=-500")
    assert (status, body) == (206, clip[-500:])
    status, _, body = await fetch(browser, media, Range=f"bytes={len(clip) - 10}-")
    assert (status, body) == (206, clip[-10:])
    status, headers, _ = await fetch(browser, media, Range=f"bytes={len(clip)}-")
    assert status in (400, 416)
    _, headers, _ = await fetch(browser, media + "?download=1")
    assert headers["Content-Disposition"].startswith("attachment;") and headers["Content-Disposition"].endswith('.mp4"')

    status, headers, body = await fetch(browser, f"/api/videos/{task.video_id}/thumbnail")
    assert (status, headers["Content-Type"], body[:3]) == (200, "image/jpeg", b"\xff\xd8\xff")

    stranger = browsers()
    await stranger.login(await new_account(servers))
    assert (await fetch(stranger, media))[0] == 404
    assert (await fetch(stranger, f"/api/videos/{task.video_id}/thumbnail"))[0] == 404
    assert (await fetch(browser, f"/api/videos/{task.video_id}/files/..%2F..%2Fsecret"))[0] in (400, 404)
