"""The live part over real servers and a real media origin: the SSE relay of WatchTasks (current state first,
isolation between users, reconnects, closing with the page) and the streaming actions start and retry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiohttp.test_utils import TestServer

from clients import FailureStatus, TaskStatus
from clients.testing import MediadlServers
from tests.dashboard.helpers import (
    STREAM_TIMEOUT,
    Browser,
    EventStream,
    new_account,
    new_task,
    open_events,
    session_of,
)
from tests.support.origin import Origin

pytestmark = pytest.mark.asyncio(loop_scope="module")

Browsers = Callable[[], Browser]
PLAYLIST = "hls_ts/index.m3u8"


def status_of(task_id: str, status: str) -> Callable[[EventStream], bool]:
    return lambda stream: stream.latest.get(task_id, {}).get("status") == status


async def test_the_stream_starts_with_the_current_state_and_follows_a_download(
    servers: MediadlServers, browsers: Browsers, origin: Origin
) -> None:
    account = await new_account(servers)
    browser = browsers()
    await browser.login(account)
    idle = await new_task(account.client, title="idle")
    task = await new_task(account.client, url=origin.url(PLAYLIST))
    events = await open_events(browser)
    await events.until(lambda s: {idle.id, task.id} <= s.latest.keys())
    assert events.latest[task.id]["status"] == "PENDING" and events.latest[task.id]["progress"] == 0

    status, body = await browser.post(f"/api/tasks/{task.id}/start")
    assert status == 200 and body["task"]["task_id"] == task.id
    await events.until(status_of(task.id, "COMPLETED"))
    done = events.latest[task.id]
    assert (done["progress"], done["segments_done"], done["segments_total"]) == (1.0, 6, 6)
    assert done["bytes_downloaded"] > 0  # bytes_total stays 0 for HLS: segment sizes are not known up front
    events.close()

    status, detail = await browser.get(f"/api/tasks/{task.id}")
    assert status == 200 and detail["task"]["status"] == "COMPLETED"
    assert [(v["format"], v["segment_count"]) for v in detail["videos"]] == [("hls", 6)]


async def test_a_users_stream_never_carries_another_users_events(
    servers: MediadlServers, browsers: Browsers, origin: Origin
) -> None:
    alice, bob = await new_account(servers), await new_account(servers)
    alice_page, bob_page = browsers(), browsers()
    await alice_page.login(alice)
    await bob_page.login(bob)
    alice_tasks = {(await new_task(alice.client, url=origin.url(PLAYLIST))).id for _ in range(2)}
    bob_tasks = {(await new_task(bob.client, url=origin.url(PLAYLIST))).id for _ in range(2)}
    alice_events, bob_events = await open_events(alice_page), await open_events(bob_page)
    for task_id in alice_tasks:
        assert (await alice_page.post(f"/api/tasks/{task_id}/start"))[0] == 200
    for task_id in bob_tasks:
        assert (await bob_page.post(f"/api/tasks/{task_id}/start"))[0] == 200

    def all_completed(ids: set[str]) -> Callable[[EventStream], bool]:
        return lambda s: all(s.latest.get(i, {}).get("status") == "COMPLETED" for i in ids)

    await asyncio.gather(alice_events.until(all_completed(alice_tasks)), bob_events.until(all_completed(bob_tasks)))
    assert alice_events.latest.keys() == alice_tasks
    assert bob_events.latest.keys() == bob_tasks
    # And one user cannot open the other's detail or act on it through the dashboard either.
    some_bob_task = next(iter(bob_tasks))
    assert (await alice_page.get(f"/api/tasks/{some_bob_task}"))[0] == 404
    assert (await alice_page.post(f"/api/tasks/{some_bob_task}/retry"))[0] == 404


async def test_the_grpc_stream_closes_with_the_page_and_a_reconnect_gets_the_current_state(
    servers: MediadlServers, dashboard: TestServer, browsers: Browsers
) -> None:
    account = await new_account(servers)
    browser = browsers()
    await browser.login(account)
    task = await new_task(account.client)
    hub = session_of(dashboard, browser).hub
    first = await open_events(browser)
    await first.until(status_of(task.id, "PENDING"))
    assert hub.streaming and hub.streams_opened == 1
    first.close()  # the page goes away
    async with asyncio.timeout(STREAM_TIMEOUT):
        await hub.idle.wait()
    assert not hub.streaming and hub.listener_count == 0

    await account.client.cancel(task.id)  # changes while no page is open
    second = await open_events(browser)
    await second.until(status_of(task.id, "CANCELLED"))
    assert hub.streams_opened == 2
    # Two pages of one session share one gRPC stream.
    third = await open_events(browser)
    await third.until(status_of(task.id, "CANCELLED"))
    assert hub.streams_opened == 2 and hub.listener_count == 2


async def test_the_stream_needs_a_session_and_ends_at_logout(servers: MediadlServers, browsers: Browsers) -> None:
    stranger = browsers()
    assert (await stranger.get("/api/events"))[0] == 401
    browser = browsers()
    await browser.login(await new_account(servers))
    events = await open_events(browser)
    assert (await browser.post("/api/logout"))[0] == 200
    async with asyncio.timeout(STREAM_TIMEOUT):
        event, data = await events.next()
    assert (event, data["reason"]) == ("end", "logout")


async def test_pause_resume_failures_and_retry_through_the_api(
    servers: MediadlServers, browsers: Browsers, origin: Origin
) -> None:
    account = await new_account(servers)
    browser = browsers()
    await browser.login(account)
    task = await new_task(account.client, url=origin.url(PLAYLIST))
    gate = origin.gate("hls_ts/seg02.ts")  # the download waits there until we let it go
    origin.fail("hls_ts/seg04.ts", status=404)  # and this one is missing until healed
    events = await open_events(browser)
    assert (await browser.post(f"/api/tasks/{task.id}/start"))[1]["task"]["status"] == "PROCESSING"
    await origin.wait_requests("hls_ts/seg02.ts", 1)
    status, body = await browser.post(f"/api/tasks/{task.id}/pause")
    assert status == 200 and body["task"]["status"] == "PAUSED"
    await events.until(status_of(task.id, "PAUSED"))
    gate.set()
    status, body = await browser.post(f"/api/tasks/{task.id}/resume")
    assert status == 200 and body["task"]["status"] == "PROCESSING"
    await events.until(status_of(task.id, "PARTIAL_COMPLETED"))
    assert events.latest[task.id]["segments_failed"] == 1

    status, detail = await browser.get(f"/api/tasks/{task.id}")
    [failure] = detail["failures"]
    assert (failure["segment_index"], failure["http_status"], failure["status"]) == (4, 404, "PENDING")
    origin.heal("hls_ts/seg04.ts")
    status, body = await browser.post(f"/api/failures/{failure['id']}/retry", {"task_id": task.id})
    assert status == 200 and body["failure"]["status"] == "RESOLVED"
    await events.until(status_of(task.id, "COMPLETED"))
    assert (await account.client.get_task(task.id)).status is TaskStatus.COMPLETED


async def test_retry_a_partial_task_fetches_what_failed(
    servers: MediadlServers, browsers: Browsers, origin: Origin
) -> None:
    account = await new_account(servers)
    browser = browsers()
    await browser.login(account)
    task = await new_task(account.client, url=origin.url(PLAYLIST))
    origin.fail("hls_ts/seg01.ts", status=404)
    events = await open_events(browser)
    assert (await browser.post(f"/api/tasks/{task.id}/start"))[0] == 200
    await events.until(status_of(task.id, "PARTIAL_COMPLETED"))
    origin.heal()
    status, body = await browser.post(f"/api/tasks/{task.id}/retry")
    assert status == 200 and body["task"]["task_id"] == task.id
    await events.until(status_of(task.id, "COMPLETED"))
    failures = await account.client.list_task_failures(task.id)
    assert [f.status for f in failures] == [FailureStatus.RESOLVED]
    assert (await account.client.get_task(task.id)).retry_count == 1
