"""The CLI in a terminal session (a pty) and in pipes: the password prompt, the live progress bar, the
dashboard started and stopped, and the plain-line and JSON forms of a progress stream."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clients import AsyncClient, FileTokenStore, ResourceType, Task
from clients.cli.dashboard import ENTER_SCREEN, LEAVE_SCREEN
from clients.testing import TEST_PASSWORD, MediadlServers
from tests.clients.cli_runner import run_cli, spawn_cli
from tests.clients.pty_runner import PtySession
from tests.clients.streams import hls_task
from tests.support.origin import Origin


@pytest.fixture
async def origin(media_fixtures: Path, tmp_path: Path) -> AsyncIterator[Origin]:
    async with Origin.serving(media_fixtures, tmp_path) as serving:
        yield serving


def addresses(servers: MediadlServers, home: Path) -> list[str]:
    return [
        "--auth-addr", servers.auth_addr, "--download-addr", servers.download_addr,
        "--config-dir", str(home / "cfg"),
    ]  # fmt: skip


async def logged_in_as_cli_user(servers: MediadlServers, home: Path) -> AsyncClient:
    """A user logged in through the CLI's own token file, so CLI processes and this client share the login."""
    return await servers.logged_in_client(tokens=FileTokenStore(home / "cfg" / "tokens.json"))


async def pending_task(client: AsyncClient, title: str) -> Task:
    return await client.create_task(
        video_id=str(uuid.uuid4()),
        liveroom_id="room",
        liveroom_title=title,
        resource_url="https://media.example.com/a.mp4",
        resource_type=ResourceType.MP4,
    )


async def test_login_prompts_for_the_password_on_a_terminal(sqlite_servers: MediadlServers, tmp_path: Path) -> None:
    client = await sqlite_servers.client()
    await client.register(email="tty@example.com", username="tty_user", password=TEST_PASSWORD)
    session = await PtySession.spawn(
        tmp_path, *addresses(sqlite_servers, tmp_path), "login", "--email", "tty@example.com"
    )
    try:
        await session.wait_for(lambda text: "Password:" in text)
        session.type(TEST_PASSWORD.encode() + b"\n")
        assert await session.exit_code() == 0
    finally:
        await session.close()
    assert "logged in as tty_user" in session.text
    assert TEST_PASSWORD not in session.text  # getpass does not echo
    assert (tmp_path / "cfg" / "tokens.json").stat().st_mode & 0o777 == 0o600


async def test_watch_draws_a_progress_bar_in_place(
    sqlite_servers: MediadlServers, origin: Origin, tmp_path: Path
) -> None:
    client = await logged_in_as_cli_user(sqlite_servers, tmp_path)
    task = await hls_task(client, origin)
    gate = origin.gate("hls_ts/seg03.ts")  # hold the download part-way so the bar shows partial progress
    async with client.start(task.id) as events:
        await anext(events)
    await origin.wait_requests("hls_ts/seg03.ts", 1)

    session = await PtySession.spawn(tmp_path, *addresses(sqlite_servers, tmp_path), "watch", task.id)
    try:
        await session.wait_for(lambda text: "\r[" in text and "seg " in text)
        gate.set()
        assert await session.exit_code() == 0
    finally:
        await session.close()
    text = session.text
    assert text.count("\r[") >= 2, text  # redrawn in place, not one line per event
    assert "\x1b[K" in text and "█" in text
    assert "seg 6/6" in text and "COMPLETED" in text
    assert "Traceback" not in text


async def test_watch_without_a_terminal_prints_plain_lines(
    sqlite_servers: MediadlServers, origin: Origin, tmp_path: Path
) -> None:
    client = await logged_in_as_cli_user(sqlite_servers, tmp_path)
    task = await hls_task(client, origin)
    started = await run_cli(None, tmp_path, *addresses(sqlite_servers, tmp_path), "task", "start", task.id)
    assert started.code == 0, started
    assert "\r" not in started.stdout and "\x1b" not in started.stdout
    lines = started.stdout.strip().splitlines()
    assert "COMPLETED" in lines[-2] and lines[-1].startswith("COMPLETED: ")
    assert "6/6 segments" in lines[-1]


async def test_create_and_start_as_json_lines(sqlite_servers: MediadlServers, origin: Origin, tmp_path: Path) -> None:
    await logged_in_as_cli_user(sqlite_servers, tmp_path)
    result = await run_cli(
        None, tmp_path, *addresses(sqlite_servers, tmp_path), "--json", "task", "create", "--start",
        "--url", origin.url("hls_ts/index.m3u8"), "--liveroom-id", "json",
    )  # fmt: skip
    assert result.code == 0, result
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[-1]["status"] == "COMPLETED" and events[-1]["segments_done"] == 6
    assert len({event["task_id"] for event in events}) == 1


async def test_dashboard_shows_tasks_live_and_q_restores_the_terminal(
    sqlite_servers: MediadlServers, tmp_path: Path
) -> None:
    client = await logged_in_as_cli_user(sqlite_servers, tmp_path)
    alpha = await pending_task(client, "alpha-title")
    await pending_task(client, "beta-title")

    session = await PtySession.spawn(tmp_path, *addresses(sqlite_servers, tmp_path), "dashboard")
    try:
        await session.wait_for(lambda text: ENTER_SCREEN in text and "alpha-title" in text and "beta-title" in text)
        drawn = len(session.output)
        await client.cancel(alpha.id)
        await session.wait_for(lambda text: "CANCELLED" in session.output[drawn:].decode(errors="replace"))
        session.type(b"q")
        assert await session.exit_code() == 0
    finally:
        await session.close()
    assert session.text.rstrip().endswith(LEAVE_SCREEN)
    assert "Traceback" not in session.text


async def test_dashboard_ctrl_c_exits_130_and_restores_the_terminal(
    sqlite_servers: MediadlServers, tmp_path: Path
) -> None:
    client = await logged_in_as_cli_user(sqlite_servers, tmp_path)
    await pending_task(client, "gamma-title")
    session = await PtySession.spawn(tmp_path, *addresses(sqlite_servers, tmp_path), "dashboard")
    try:
        await session.wait_for(lambda text: "gamma-title" in text)
        session.interrupt()
        assert await session.exit_code() == 130
    finally:
        await session.close()
    assert LEAVE_SCREEN in session.text and "Traceback" not in session.text


async def test_dashboard_needs_a_terminal(sqlite_servers: MediadlServers, tmp_path: Path) -> None:
    await logged_in_as_cli_user(sqlite_servers, tmp_path)
    result = await run_cli(None, tmp_path, *addresses(sqlite_servers, tmp_path), "dashboard")
    assert result.code == 2 and "--json" in result.stderr and "Traceback" not in result.stderr


async def test_dashboard_json_streams_events(sqlite_servers: MediadlServers, tmp_path: Path) -> None:
    client = await logged_in_as_cli_user(sqlite_servers, tmp_path)
    task = await pending_task(client, "delta-title")
    process = await spawn_cli(tmp_path, *addresses(sqlite_servers, tmp_path), "--json", "dashboard")
    try:
        assert process.stdout is not None
        first = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert first["task_id"] == task.id
    finally:
        process.terminate()
        await process.wait()


async def test_partial_download_exit_code_and_failures_commands(
    sqlite_servers: MediadlServers, origin: Origin, tmp_path: Path
) -> None:
    await logged_in_as_cli_user(sqlite_servers, tmp_path)
    origin.fail("hls_ts/seg05.ts", status=404)
    cli = addresses(sqlite_servers, tmp_path)

    created = await run_cli(None, tmp_path, *cli, "--json", "task", "create", "--url", origin.url("hls_ts/index.m3u8"),
                            "--liveroom-id", "partial")  # fmt: skip
    task_id = created.json()["id"]
    started = await run_cli(None, tmp_path, *cli, "task", "start", task_id)
    assert started.code == 1, started  # scripts can tell a partial download from a complete one
    assert "PARTIAL_COMPLETED" in started.stdout and "failures list --task" in started.stdout

    listed = await run_cli(None, tmp_path, *cli, "--json", "failures", "list", "--task", task_id[:8])
    failures = listed.json()["failures"]
    assert [(f["segment_index"], f["status"]) for f in failures] == [(5, "PENDING")]

    origin.heal()
    retried = await run_cli(None, tmp_path, *cli, "failures", "retry", failures[0]["id"])
    assert retried.code == 0 and "RESOLVED" in retried.stdout, retried
    shown = await run_cli(None, tmp_path, *cli, "--json", "task", "show", task_id)
    assert shown.json()["status"] == "COMPLETED"  # the last open failure resolved completes the task
    videos = await run_cli(None, tmp_path, *cli, "--json", "videos", "list", task_id)
    video_id = shown.json()["video_id"]
    assert [v["video_id"] for v in videos.json()["videos"]] == [video_id]
    video = await run_cli(None, tmp_path, *cli, "videos", "show", video_id)
    assert video.code == 0 and "hls" in video.stdout
