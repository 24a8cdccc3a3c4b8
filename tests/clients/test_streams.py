"""Progress streams through the client: watch and watch_all on state changes, start to completion on the
fixture stream, refresh of an expired token before a stream, and closing a stream early."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clients import AsyncClient, FailureStatus, ResourceType, Task, TaskStatus, Tokens
from clients.testing import MediadlServers
from tests.clients.conftest import CallCounter
from tests.clients.streams import hls_task
from tests.support.origin import Origin


@pytest.fixture
async def origin(media_fixtures: Path, tmp_path: Path) -> AsyncIterator[Origin]:
    async with Origin.serving(media_fixtures, tmp_path) as serving:
        yield serving


async def pending_task(client: AsyncClient) -> Task:
    return await client.create_task(
        video_id=str(uuid.uuid4()),
        liveroom_id="r1",
        resource_url="https://media.example.com/a.mp4",
        resource_type=ResourceType.MP4,
    )


async def test_watch_sends_current_state_then_ends_after_a_terminal_event(servers: MediadlServers) -> None:
    client = await servers.logged_in_client()
    task = await pending_task(client)
    async with client.watch(task.id) as events:
        first = await anext(events)
        assert (first.task_id, first.status) == (task.id, TaskStatus.PENDING)
        await client.cancel(task.id)
        rest = [event async for event in events]  # ends by itself after CANCELLED
    assert rest and rest[-1].status is TaskStatus.CANCELLED


async def test_watch_all_reports_changes_of_every_task(servers: MediadlServers) -> None:
    client = await servers.logged_in_client()
    tasks = [await pending_task(client) for _ in range(2)]
    async with client.watch_all() as events:
        await anext(events)
        await client.cancel(tasks[1].id)
        async for event in events:
            if event.task_id == tasks[1].id and event.status is TaskStatus.CANCELLED:
                break
        else:
            pytest.fail("WatchTasks ended by itself")


async def test_expired_token_is_refreshed_before_a_stream_starts(servers: MediadlServers) -> None:
    counter = CallCounter()
    client = await servers.logged_in_client(interceptors=[counter])
    task = await pending_task(client)
    tokens = client.tokens.load()
    assert tokens is not None
    client.tokens.save(Tokens(servers.issue_access_token(task.user_id, ttl_seconds=-60), tokens.refresh_token))
    async with client.watch(task.id) as events:
        first = await anext(events)
    assert first.task_id == task.id
    assert counter.refreshes == 1


async def test_start_downloads_the_fixture_stream(sqlite_servers: MediadlServers, origin: Origin) -> None:
    client = await sqlite_servers.logged_in_client()
    task = await hls_task(client, origin)
    async with client.start(task.id) as events:
        first = await anext(events)
        seen = [first, *[event async for event in events]]
    assert seen[-1].status is TaskStatus.COMPLETED
    assert (seen[-1].segments_done, seen[-1].segments_total, seen[-1].segments_failed) == (6, 6, 0)
    downloaded = [event.bytes_downloaded for event in seen]
    assert downloaded == sorted(downloaded)  # progress never goes backwards
    finished = await client.get_task(task.id)
    assert finished.status is TaskStatus.COMPLETED and finished.complete_time is not None
    videos = [video async for video in client.iter_task_videos(task.id)]
    assert len(videos) == 1 and videos[0].segment_count == 6


async def test_closing_a_stream_early_does_not_stop_the_download(
    sqlite_servers: MediadlServers, origin: Origin
) -> None:
    client = await sqlite_servers.logged_in_client()
    gate = origin.gate("hls_ts/seg03.ts")  # hold the download half-way while the stream is closed
    task = await hls_task(client, origin)
    async with client.start(task.id) as events:
        await anext(events)
    await origin.wait_requests("hls_ts/seg03.ts", 1)
    gate.set()
    async with client.watch(task.id) as events:
        last = [event async for event in events][-1]
    assert last.status is TaskStatus.COMPLETED


async def test_partial_download_then_retry_fetches_only_what_failed(
    sqlite_servers: MediadlServers, origin: Origin
) -> None:
    client = await sqlite_servers.logged_in_client()
    origin.fail("hls_ts/seg02.ts", status=404)
    task = await hls_task(client, origin)
    async with client.start(task.id) as events:
        await anext(events)
        last = [event async for event in events][-1]
    assert (last.status, last.segments_done, last.segments_failed) == (TaskStatus.PARTIAL_COMPLETED, 5, 1)
    failures = [failure async for failure in client.iter_task_failures(task.id)]
    assert [(f.segment_index, f.http_status) for f in failures] == [(2, 404)]

    origin.heal()
    fetched_before = origin.completed.copy()
    async with client.retry(task.id) as events:
        retried = [event async for event in events]
    assert retried[-1].status is TaskStatus.COMPLETED and retried[-1].segments_done == 6
    assert origin.completed["hls_ts/seg02.ts"] == fetched_before["hls_ts/seg02.ts"] + 1
    for index in (0, 1, 3, 4, 5):
        assert origin.completed[f"hls_ts/seg0{index}.ts"] == fetched_before[f"hls_ts/seg0{index}.ts"]
    assert (await client.get_task(task.id)).retry_count == 1


async def test_retry_and_abandon_single_failures(sqlite_servers: MediadlServers, origin: Origin) -> None:
    client = await sqlite_servers.logged_in_client()
    origin.fail("hls_ts/seg01.ts", status=404)
    origin.fail("hls_ts/seg04.ts", status=404)
    task = await hls_task(client, origin)
    async with client.start(task.id) as events:
        await anext(events)
        assert [event async for event in events][-1].status is TaskStatus.PARTIAL_COMPLETED
    by_segment = {f.segment_index: f async for f in client.iter_task_failures(task.id)}
    assert set(by_segment) == {1, 4}

    origin.heal()
    resolved = await client.retry_failure(by_segment[1].id, task_id=task.id)
    assert resolved.status is FailureStatus.RESOLVED
    abandoned = await client.abandon_failure(by_segment[4].id)
    assert abandoned.status is FailureStatus.ABANDONED
    # Abandoning is not fetching: the task stays partial.
    assert (await client.get_task(task.id)).status is TaskStatus.PARTIAL_COMPLETED
