"""The JSON API behind the page: log in and out, list and show tasks, act on tasks and failure records.

Each handler reads the request, makes one or two calls through the session's client and answers with
plain JSON (dashboard.serialize). Client errors become HTTP statuses in dashboard.errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from aiohttp import web

from clients import AuthenticationError, MediadlError, ResourceType, TaskStatus
from dashboard.errors import ApiError
from dashboard.security import (
    LOGIN_COOKIE,
    SESSION,
    SESSION_COOKIE,
    SESSIONS,
    SIGNER,
    clear_cookie,
    current_session,
    issue_login_cookie,
    set_cookie,
)
from dashboard.serialize import Json, event_json, failure_json, page_json, task_json, user_json, video_json
from dashboard.sessions import UserSession
from dashboard.upstream import UPSTREAM

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 100
ORDERS = ("create_time desc", "create_time", "update_time desc", "update_time")
CREATABLE_TYPES = (ResourceType.HLS, ResourceType.DASH, ResourceType.MP4, ResourceType.IMAGE, ResourceType.FLV)
TASK_ACTIONS = ("start", "pause", "resume", "cancel", "retry")
FAILURE_ACTIONS = ("retry", "abandon")


# Reading requests


async def read_json(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ApiError(415, "INVALID_ARGUMENT", "send a JSON body (Content-Type: application/json)")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "INVALID_ARGUMENT", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "INVALID_ARGUMENT", "the body must be a JSON object")
    return body


def text_field(body: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError.field(name, "must be a string")
    if required and not value.strip():
        raise ApiError.field(name, "is required")
    return value


def page_size(request: web.Request) -> int:
    raw = request.query.get("page_size", str(DEFAULT_PAGE_SIZE))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise ApiError.field("page_size", f"must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(raw)


def task_statuses(request: web.Request) -> list[TaskStatus]:
    try:
        return [TaskStatus(value) for value in request.query.getall("status", [])]
    except ValueError:
        names = ", ".join(s.value for s in TaskStatus if s is not TaskStatus.UNSPECIFIED)
        raise ApiError.field("status", f"must be one of {names}") from None


# Session


async def get_session(request: web.Request) -> web.StreamResponse:
    """Who is logged in, and the CSRF token the page must send (the login token when nobody is)."""
    session: UserSession | None = request.get(SESSION)
    response = web.Response(content_type="application/json")
    if session is not None:
        body: Json = {"user": user_json(session.user), "csrf_token": session.csrf_token}
        body["expires_at"] = session.expires_at()
    else:
        body = {"user": None, "csrf_token": issue_login_cookie(request, response)}
    response.text = json.dumps(body)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    email = text_field(body, "email", required=True)
    password = text_field(body, "password", required=True)
    client = await request.app[UPSTREAM].connect()
    try:
        # The auth server throttles logins per client: name the browser, or every user shares our address.
        user = await client.login(email, password, forwarded_for=request.remote)
    except AuthenticationError as exc:
        await client.close()
        raise ApiError(401, "UNAUTHENTICATED", exc.message) from None
    except BaseException:
        await client.close()
        raise
    store = request.app[SESSIONS]
    previous: UserSession | None = request.get(SESSION)
    if previous is not None:
        await _end_session(request, previous.id)
    session = store.add(client, user)
    response = web.json_response({"user": user_json(user), "csrf_token": session.csrf_token})
    # The cookie lives as long as the refresh token; the server-side session ends then too.
    max_age = max(0, int(session.expires_at() - time.time()))
    set_cookie(request, response, SESSION_COOKIE, request.app[SIGNER].sign(session.id), max_age=max_age)
    clear_cookie(request, response, LOGIN_COOKIE)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """Revoke the login's refresh tokens at the auth server, then forget the session here."""
    session = current_session(request)
    revoked = await _end_session(request, session.id)
    response = web.json_response({"logged_out": True, "revoked": revoked})
    clear_cookie(request, response, SESSION_COOKIE)
    return response


async def _end_session(request: web.Request, session_id: str) -> bool:
    store = request.app[SESSIONS]
    session = await store.lookup(session_id)
    revoked = False
    if session is not None:
        try:
            await session.client.logout()
            revoked = True
        except MediadlError as exc:
            # The browser is logged out regardless; the refresh token just lives until it expires.
            log.warning("logout could not revoke the refresh token: %s", exc.message)
    await store.remove(session_id, reason="logout")
    return revoked


# Tasks


async def list_tasks(request: web.Request) -> web.StreamResponse:
    client = current_session(request).client
    order_by = request.query.get("order_by", "")
    if order_by and order_by not in ORDERS:
        raise ApiError.field("order_by", f"must be one of {', '.join(ORDERS)}")
    page = await client.list_tasks(
        page_size=page_size(request),
        page_token=request.query.get("page_token", ""),
        statuses=task_statuses(request),
        order_by=order_by,
    )
    return web.json_response(page_json(page, "tasks", task_json))


async def create_task(request: web.Request) -> web.StreamResponse:
    client = current_session(request).client
    body = await read_json(request)
    raw_type = text_field(body, "resource_type", required=True).upper()
    if raw_type not in {t.value for t in CREATABLE_TYPES}:
        raise ApiError.field("resource_type", "must be one of " + ", ".join(t.value for t in CREATABLE_TYPES))
    task = await client.create_task(
        # A business id the user need not invent: a new one unless the form gave one.
        video_id=text_field(body, "video_id").strip() or str(uuid.uuid4()),
        liveroom_id=text_field(body, "liveroom_id"),
        liveroom_title=text_field(body, "liveroom_title"),
        liveroom_url=text_field(body, "liveroom_url").strip(),
        resource_url=text_field(body, "resource_url").strip(),
        resource_type=ResourceType(raw_type),
    )
    return web.json_response({"task": task_json(task)}, status=201)


async def task_detail(request: web.Request) -> web.StreamResponse:
    """The task with its failure records and video records (first 100 of each)."""
    client = current_session(request).client
    task_id = request.match_info["task_id"]
    task = await client.get_task(task_id)  # NOT_FOUND first, before the lists
    failures, videos = await asyncio.gather(
        client.list_task_failures(task_id, page_size=MAX_PAGE_SIZE),
        client.list_task_videos(task_id, page_size=MAX_PAGE_SIZE),
    )
    body: Json = {
        "task": task_json(task),
        "failures": [failure_json(f) for f in failures],
        "failures_total": failures.total_size,
        "videos": [video_json(v) for v in videos],
    }
    return web.json_response(body)


async def task_action(request: web.Request) -> web.StreamResponse:
    client = current_session(request).client
    task_id, action = request.match_info["task_id"], request.match_info["action"]
    if action not in TASK_ACTIONS:
        raise web.HTTPNotFound()
    if action in ("start", "retry"):
        # These RPCs stream; the first event shows the task started. Closing the stream leaves the download
        # running on the server, and the page follows it through its own event stream.
        stream = client.start(task_id) if action == "start" else client.retry(task_id)
        async with stream:
            first = await anext(stream, None)
        update = event_json(first) if first is not None else task_json(await client.get_task(task_id))
        return web.json_response({"task": update})
    step = {"pause": client.pause, "resume": client.resume, "cancel": client.cancel}[action]
    return web.json_response({"task": task_json(await step(task_id))})


async def delete_task(request: web.Request) -> web.StreamResponse:
    session = current_session(request)
    task_id = request.match_info["task_id"]
    delete_files = request.query.get("delete_files", "false").lower() in ("1", "true", "yes")
    await session.client.delete_task(task_id, delete_files=delete_files)
    session.hub.forget(task_id)
    return web.json_response({"deleted": task_id, "delete_files": delete_files})


async def failure_action(request: web.Request) -> web.StreamResponse:
    client = current_session(request).client
    failure_id, action = request.match_info["failure_id"], request.match_info["action"]
    if action not in FAILURE_ACTIONS:
        raise web.HTTPNotFound()
    task_id = None
    if request.body_exists:
        # Optional: when given, the server checks that the record belongs to that task.
        task_id = text_field(await read_json(request), "task_id").strip() or None
    call = client.retry_failure if action == "retry" else client.abandon_failure
    failure = await call(failure_id, task_id=task_id)
    return web.json_response({"failure": failure_json(failure)})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/session", get_session)
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/tasks", list_tasks)
    app.router.add_post("/api/tasks", create_task)
    app.router.add_get("/api/tasks/{task_id}", task_detail)
    app.router.add_delete("/api/tasks/{task_id}", delete_task)
    app.router.add_post("/api/tasks/{task_id}/{action}", task_action)
    app.router.add_post("/api/failures/{failure_id}/{action}", failure_action)
