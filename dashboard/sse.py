"""GET /api/events: the session's task events as Server-Sent Events, relayed from its EventHub.

Messages: `tasks` (a JSON list of task updates, newest state per task; `removed: true` for a deleted task)
and `end` (the stream is over: `reason` "expired"/"logout" means log in again, anything else reconnect).
Comment lines keep idle connections open through proxies and reveal a vanished page.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from dashboard.relay import HubClosed
from dashboard.security import current_session

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
# Pause between two messages to one page: updates of that time coalesce, capping a page near ten a second.
MIN_INTERVAL_SECONDS = 0.1
RECONNECT_MILLISECONDS = 2000


def message(event: str, data: Any) -> bytes:
    # json.dumps never emits a raw newline, so one data: line always holds the whole payload.
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    session = current_session(request)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    await response.write(f"retry: {RECONNECT_MILLISECONDS}\n\n".encode())
    try:
        async with session.hub.listen() as listener:
            while True:
                try:
                    batch = await listener.next_batch(HEARTBEAT_SECONDS)
                except HubClosed as closed:
                    await response.write(message("end", {"reason": closed.reason, "message": closed.message}))
                    break
                if batch is None:
                    await response.write(b": keep-alive\n\n")
                    continue
                await response.write(message("tasks", batch))
                await asyncio.sleep(MIN_INTERVAL_SECONDS)
    except ConnectionError:
        # The page went away mid-write; leaving the listener above already let the hub close the stream.
        log.debug("event stream closed by the browser")
    return response
