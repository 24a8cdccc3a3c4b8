"""Prometheus metrics: per-server registry, RPC counters and latencies, and an aiohttp /metrics endpoint."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

# Seconds; covers a cached GetTask (sub-ms) to a slow login (bcrypt) and long streams.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    """One registry per server (not the process-global one), so tests can run several servers at once."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rpc_requests = Counter(
            "mediadl_rpc_requests",
            "RPCs handled, by method and status code",
            ["method", "code"],
            registry=self.registry,
        )
        self.rpc_latency = Histogram(
            "mediadl_rpc_duration_seconds",
            "RPC duration (streams: until they end)",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.active_streams = Gauge(
            "mediadl_rpc_active_streams", "Server-streaming calls now open", ["method"], registry=self.registry
        )

    def call_started(self, method: str, streaming: bool) -> None:
        if streaming:
            self.active_streams.labels(method).inc()

    def call_ended(self, method: str, code: str, seconds: float, streaming: bool) -> None:
        self.rpc_requests.labels(method, code).inc()
        self.rpc_latency.labels(method).observe(seconds)
        if streaming:
            self.active_streams.labels(method).dec()

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def start_metrics_endpoint(metrics: Metrics, address: str) -> Callable[[], Awaitable[None]]:
    """Serve GET /metrics on `address` (host:port); returns the coroutine function that stops it."""

    async def handle(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = address.rpartition(":")
    site = web.TCPSite(runner, host or "127.0.0.1", int(port))
    await site.start()
    log.info("metrics on http://%s/metrics", address)
    return runner.cleanup
