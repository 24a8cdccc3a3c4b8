"""Composition root of the dashboard: the aiohttp app (API, event stream, static page) and its start and stop.

`python -m dashboard` and the tests both call start_dashboard(), so what is tested is what runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from dashboard.api import add_routes
from dashboard.config import DashboardSettings
from dashboard.errors import error_middleware
from dashboard.media import add_media_routes
from dashboard.security import (
    COOKIE_SECURE,
    SESSIONS,
    SIGNER,
    add_security_headers,
    csrf_middleware,
    session_middleware,
)
from dashboard.sessions import Clock, CookieSigner, SessionStore
from dashboard.sse import events
from dashboard.upstream import UPSTREAM, Upstream

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 64 * 1024  # the largest legitimate body is a create form: four URLs of 2 KiB and a title
SWEEP_SECONDS = 60.0


def create_app(
    settings: DashboardSettings, *, upstream: Upstream | None = None, clock: Clock = time.time
) -> web.Application:
    """The dashboard app; `upstream` overrides the gRPC addresses of `settings` (tests), `clock` its time."""
    app = web.Application(
        middlewares=[error_middleware, session_middleware, csrf_middleware], client_max_size=MAX_BODY_BYTES
    )
    app[SIGNER] = CookieSigner(settings.session_secret)
    app[SESSIONS] = SessionStore(idle_timeout=settings.idle_timeout_seconds, clock=clock)
    app[COOKIE_SECURE] = settings.cookie_secure
    app[UPSTREAM] = upstream or Upstream(
        settings.auth_addr,
        settings.download_addr,
        settings.grpc_timeout_seconds,
        settings.tls.credentials() if settings.tls else None,
    )
    app.on_response_prepare.append(add_security_headers)
    add_routes(app)
    add_media_routes(app)
    app.router.add_get("/api/events", events)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
    app.cleanup_ctx.append(_sweeper)
    # Before connections are closed: end every session's event stream cleanly, and close its channels.
    app.on_shutdown.append(_close_sessions)
    return app


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok\n")


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[SESSIONS].run_sweeper(SWEEP_SECONDS), name="dashboard-session-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_sessions(app: web.Application) -> None:
    await app[SESSIONS].close_all()


@dataclass
class RunningDashboard:
    """A started dashboard: the app, its runner and the port it listens on (port 0 in settings picks one)."""

    app: web.Application
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_dashboard(
    settings: DashboardSettings, *, upstream: Upstream | None = None, clock: Clock = time.time
) -> RunningDashboard:
    app = create_app(settings, upstream=upstream, clock=clock)
    # handler_cancellation: a page that goes away cancels its event stream at once, closing the gRPC stream.
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=settings.shutdown_grace_seconds)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = int(runner.addresses[0][1])
    log.info(
        "dashboard listening on %s:%d (auth %s, download %s)",
        settings.host,
        port,
        app[UPSTREAM].auth_addr,
        app[UPSTREAM].download_addr,
    )
    return RunningDashboard(app=app, runner=runner, host=settings.host, port=port)
