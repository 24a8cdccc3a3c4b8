"""The dashboard's JSON API over HTTP (aiohttp's test server) against both real gRPC servers: security
headers, CSRF refusals, the task and failure endpoints, input errors and ownership."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from clients import FailureStatus, TaskStatus
from clients.testing import MediadlServers
from tests.dashboard.helpers import Browser, new_account, new_task
from tests.dashboard.test_static import InlineFinder

pytestmark = pytest.mark.asyncio(loop_scope="module")

Browsers = Callable[[], Browser]


# Page, headers and static files


async def test_page_and_files_are_served_with_a_strict_policy(browsers: Browsers) -> None:
    browser = browsers()
    for path in ("/", "/static/js/app.js", "/static/app.css", "/api/session", "/no/such/page"):
        async with browser.session.get(browser.url(path)) as resp:
            csp = resp.headers.get("Content-Security-Policy", "")
            assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["X-Frame-Options"] == "DENY"
            if path.startswith("/api/"):
                assert resp.headers["Cache-Control"] == "no-store"
            elif path.startswith("/static/"):
                assert resp.headers["Cache-Control"] == "no-cache"
    async with browser.session.get(browser.url("/")) as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        finder = InlineFinder()
        finder.feed(await resp.text())
    assert finder.inline == []  # the CSP would block them: everything is in files
    async with browser.session.get(browser.url("/static/")) as resp:
        assert resp.status in (403, 404)  # no directory listing


# CSRF


async def test_state_changing_requests_without_the_right_csrf_token_are_refused(
    servers: MediadlServers, browsers: Browsers
) -> None:
    account = await new_account(servers)
    browser, intruder = browsers(), browsers()
    await browser.login(account)
    await intruder.login(await new_account(servers))
    task = await new_task(account.client)
    failure = await account.client.create_failure(task.id, error_type="http", http_status=503, segment_index=1)
    attempts = [
        (
            "POST",
            "/api/tasks",
            {"liveroom_id": "r", "resource_url": "https://x.example.com/a.mp4", "resource_type": "MP4"},
        ),
        ("POST", f"/api/tasks/{task.id}/cancel", None),
        ("DELETE", f"/api/tasks/{task.id}", None),
        ("POST", f"/api/failures/{failure.id}/abandon", None),
        ("POST", "/api/logout", None),
    ]
    for method, path, body in attempts:
        for token in ("", "wrong", intruder.csrf):
            status, answer = await browser.request(method, path, json_body=body, csrf=token)
            assert status == 403 and answer["error"]["code"] == "CSRF_FAILED", (method, path, token)
        # The right token from another origin is refused too.
        status, _ = await browser.request(method, path, json_body=body, headers={"Origin": "http://evil.example"})
        assert status == 403, (method, path)

    # Nothing happened: same tasks, same states, still logged in.
    assert (await account.client.list_tasks()).total_size == 1
    assert (await account.client.get_task(task.id)).status is TaskStatus.PENDING
    assert (await account.client.get_failure(failure.id)).status is FailureStatus.PENDING
    assert (await browser.get("/api/session"))[1]["user"] is not None
    # And with the right token (and a same-origin Origin) it works.
    origin = f"http://{browser.base.host}:{browser.base.port}"
    status, body = await browser.post(f"/api/tasks/{task.id}/cancel", headers={"Origin": origin})
    assert status == 200 and body["task"]["status"] == "CANCELLED"


# Tasks, failures, videos


async def test_create_list_detail_and_delete(servers: MediadlServers, browsers: Browsers) -> None:
    account = await new_account(servers)
    browser = browsers()
    await browser.login(account)
    status, created = await browser.post(
        "/api/tasks",
        {
            "liveroom_id": "room7",
            "liveroom_title": "Late show",
            "resource_url": " https://cdn.example.com/show/index.m3u8 ",
            "resource_type": "hls",
        },
    )
    assert status == 201, created
    task = created["task"]
    assert (task["status"], task["resource_type"], task["liveroom_title"]) == ("PENDING", "HLS", "Late show")
    assert task["resource_url"] == "https://cdn.example.com/show/index.m3u8"
    assert uuid.UUID(task["video_id"])  # made up for the user, since the form left it empty

    others = [await new_task(account.client, title=f"t{i}") for i in range(3)]
    status, page = await browser.get("/api/tasks?page_size=2")
    assert status == 200 and page["total_size"] == 4 and len(page["tasks"]) == 2 and page["next_page_token"]
    status, rest = await browser.get(f"/api/tasks?page_size=2&page_token={page['next_page_token']}")
    listed = [t["id"] for t in page["tasks"] + rest["tasks"]]
    assert sorted(listed) == sorted([task["id"], *(t.id for t in others)])
    status, only = await browser.get("/api/tasks?status=CANCELLED")
    assert status == 200 and only["tasks"] == []

    failure = await account.client.create_failure(task["id"], error_type="http", http_status=404, segment_index=3)
    video = await account.client.create_video(
        task["id"], file_path=f"hls/{task['id']}/index.m3u8", file_size=2048, format="hls"
    )
    status, detail = await browser.get(f"/api/tasks/{task['id']}")
    assert status == 200 and detail["task"]["id"] == task["id"] and detail["failures_total"] == 1
    assert [(f["id"], f["segment_index"], f["http_status"]) for f in detail["failures"]] == [(failure.id, 3, 404)]
    assert [(v["id"], v["file_size"], v["format"]) for v in detail["videos"]] == [(video.id, 2048, "hls")]

    status, body = await browser.post(f"/api/failures/{failure.id}/abandon", {"task_id": task["id"]})
    assert status == 200 and body["failure"]["status"] == "ABANDONED"

    status, body = await browser.request("DELETE", f"/api/tasks/{task['id']}?delete_files=true")
    assert status == 200 and body == {"deleted": task["id"], "delete_files": True}
    assert (await browser.get(f"/api/tasks/{task['id']}"))[0] == 404
    assert (await account.client.list_tasks()).total_size == 3


async def test_an_http_flv_room_can_be_created(servers: MediadlServers, browsers: Browsers) -> None:
    browser = browsers()
    await browser.login(await new_account(servers))
    room = {"liveroom_id": "room9", "resource_url": "https://cdn.example.com/live/room9.flv", "resource_type": "FLV"}
    status, created = await browser.post("/api/tasks", room)
    assert status == 201, created
    assert created["task"]["resource_type"] == "FLV"


async def test_bad_input_is_a_400_naming_the_field(servers: MediadlServers, browsers: Browsers) -> None:
    account = await new_account(servers)
    browser = browsers()
    await browser.login(account)
    good = {"liveroom_id": "room1", "resource_url": "https://cdn.example.com/a.mp4", "resource_type": "MP4"}
    cases = [
        ({**good, "resource_type": "RTMP"}, "resource_type"),
        ({**good, "resource_url": "ftp://cdn.example.com/a.mp4"}, "resource_url"),
        ({**good, "liveroom_id": "x" * 21}, "liveroom_id"),
        ({**good, "video_id": "not-a-uuid"}, "video_id"),
        ({**good, "liveroom_title": 42}, "liveroom_title"),
    ]
    for body, field in cases:
        status, answer = await browser.post("/api/tasks", body)
        assert status == 400, (field, answer)
        assert field in [f["field"] for f in answer["error"]["fields"]], (field, answer)
    async with browser.session.post(
        browser.url("/api/tasks"),
        data=b"{not json",
        headers={"X-CSRF-Token": browser.csrf, "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
    for query, field in (("page_size=0", "page_size"), ("page_size=abc", "page_size"), ("status=DONE", "status")):
        status, answer = await browser.get(f"/api/tasks?{query}")
        assert status == 400 and answer["error"]["fields"][0]["field"] == field
    status, answer = await browser.get("/api/tasks/not-a-uuid")
    assert status == 400 and answer["error"]["fields"][0]["field"] == "task_id"
    assert (await account.client.list_tasks()).total_size == 0


async def test_actions_follow_the_state_table_and_ownership(servers: MediadlServers, browsers: Browsers) -> None:
    owner, stranger = await new_account(servers), await new_account(servers)
    browser, other = browsers(), browsers()
    await browser.login(owner)
    await other.login(stranger)
    task = await new_task(owner.client)

    status, body = await browser.post(f"/api/tasks/{task.id}/pause")
    assert status == 409 and "PENDING" in body["error"]["message"]
    assert (await browser.post(f"/api/tasks/{task.id}/explode"))[0] == 404
    # Someone else's task does not exist for them, whatever they try.
    assert (await other.get(f"/api/tasks/{task.id}"))[0] == 404
    assert (await other.post(f"/api/tasks/{task.id}/cancel"))[0] == 404
    assert (await other.request("DELETE", f"/api/tasks/{task.id}"))[0] == 404
    assert (await other.get("/api/tasks"))[1]["total_size"] == 0

    status, body = await browser.post(f"/api/tasks/{task.id}/cancel")
    assert status == 200 and body["task"]["status"] == "CANCELLED"
    assert (await owner.client.get_task(task.id)).status is TaskStatus.CANCELLED


async def test_a_dash_task_can_be_created(servers: MediadlServers, browsers: Browsers) -> None:
    account = await new_account(servers)
    browser = browsers()
    await browser.login(account)
    fields = {
        "liveroom_id": "room8",
        "resource_url": "https://cdn.example.com/vod/manifest.mpd",
        "resource_type": "DASH",
    }
    status, created = await browser.post("/api/tasks", fields)
    assert status == 201, created
    assert created["task"]["resource_type"] == "DASH"
