"""`mediadl video get`: a recording fetched back through ReadVideo, a killed get resumed, the thumbnail."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clients import AsyncClient, ResourceType, TaskStatus
from clients.testing import MediadlServers
from tests.clients.cli_runner import run_cli, spawn_cli
from tests.clients.test_cli_live import addresses, logged_in_as_cli_user
from tests.support.origin import Origin

BIG = 64 * 1024 * 1024


@pytest.fixture
async def origin(media_fixtures: Path, tmp_path: Path) -> AsyncIterator[Origin]:
    async with Origin.serving(media_fixtures, tmp_path) as serving:
        yield serving


async def recorded(client: AsyncClient, origin: Origin, path: str) -> str:
    """Download `path` as an MP4 task; its business video id."""
    task = await client.create_task(
        video_id=str(uuid.uuid4()),
        liveroom_id="room",
        resource_url=origin.url(path),
        resource_type=ResourceType.MP4,
    )
    async with client.start(task.id) as events:
        last = [event async for event in events][-1]
    assert last.status is TaskStatus.COMPLETED
    return task.video_id


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_killed_video_get_resumes_where_it_stopped(
    sqlite_servers: MediadlServers, origin: Origin, tmp_path: Path
) -> None:
    clip = (origin.root / "mp4/clip.mp4").read_bytes()
    origin.write("big/long.mp4", clip + os.urandom(BIG - len(clip)))
    client = await logged_in_as_cli_user(sqlite_servers, tmp_path)
    video_id = await recorded(client, origin, "big/long.mp4")
    target = tmp_path / "long.mp4"

    process = await spawn_cli(
        tmp_path, *addresses(sqlite_servers, tmp_path), "video", "get", video_id, "-o", str(target)
    )
    while process.returncode is None and (not target.exists() or target.stat().st_size == 0):  # noqa: ASYNC110
        await asyncio.sleep(0.002)  # a file size has no event to wait on
    process.kill()
    await process.wait()
    if target.stat().st_size >= BIG:  # the machine outran the kill: leave what a kill part-way leaves
        with target.open("r+b") as handle:
            handle.truncate(BIG // 3 + 12345)
    partial = target.stat().st_size
    assert 0 < partial < BIG

    result = await run_cli(
        None, tmp_path, *addresses(sqlite_servers, tmp_path), "video", "get", video_id, "-o", str(target)
    )
    assert result.code == 0, result
    assert "resumed at" in result.stdout
    assert digest(target) == digest(origin.root / "big/long.mp4")


async def test_video_get_fetches_the_thumbnail_and_hls_files(
    sqlite_servers: MediadlServers, origin: Origin, tmp_path: Path
) -> None:
    client = await logged_in_as_cli_user(sqlite_servers, tmp_path)
    video_id = await recorded(client, origin, "mp4/clip.mp4")
    thumb = tmp_path / "thumb.jpg"
    cli = addresses(sqlite_servers, tmp_path)
    result = await run_cli(None, tmp_path, *cli, "--json", "video", "get", video_id, "--thumbnail", "-o", str(thumb))
    assert result.code == 0, result
    assert thumb.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
    assert result.json()["total_size"] == thumb.stat().st_size

    missing = await run_cli(None, tmp_path, *cli, "video", "get", str(uuid.uuid4()), "-o", str(tmp_path / "x"))
    assert missing.code != 0 and "not found" in missing.stderr.lower()
