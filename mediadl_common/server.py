"""A grpc.aio server with health and reflection, and a serve loop that stops gracefully on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from mediadl_common import tracing
from mediadl_common.limits import ServerLimits, StreamLimitInterceptor
from mediadl_common.metrics import Metrics, start_metrics_endpoint
from mediadl_common.request_log import RequestLogInterceptor
from mediadl_common.tls import ServerTls

log = logging.getLogger(__name__)


@dataclass
class RunningServer:
    """A started server: its bound port, and the health servicer to flip on shutdown."""

    server: grpc.aio.Server
    port: int
    health: health_aio.HealthServicer
    service_names: list[str]
    metrics: Metrics
    request_log: RequestLogInterceptor
    # Run after health says NOT_SERVING and before the grace period starts: end what would hold it open
    # (never-ending watch streams). on_stop runs after the server has stopped.
    before_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    stopped: bool = False

    async def stop(self, grace: float) -> None:
        """Stop once; later calls return at once (a signal and a test teardown may both ask)."""
        if self.stopped:
            return
        self.stopped = True
        # Tell load balancers first, then let in-flight calls finish within the grace period.
        log.info("shutting down: %d call(s) in flight, grace %.1fs", self.request_log.in_flight, grace)
        for name in ["", *self.service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        for hook in self.before_stop:
            await hook()
        await self.server.stop(grace)
        for hook in self.on_stop:
            await hook()


async def start_server(
    address: str,
    register: Callable[[grpc.aio.Server], Sequence[str]],
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    *,
    slow_ms: float = 1000.0,
    metrics_addr: str | None = None,
    metrics: Metrics | None = None,
    limits: ServerLimits | None = None,
    tls: ServerTls | None = None,
) -> RunningServer:
    """Build, bind and start a server. `register` adds servicers and returns their full service names.

    The request-log interceptor always goes outermost, so every call has a request id and a log line.
    Port 0 in `address` picks a free port; RunningServer.port says which. With `metrics_addr`, Prometheus
    metrics are served over HTTP at /metrics there (RunningServer.metrics is the registry either way).
    `limits` (message sizes, streams per connection and per client) default to ServerLimits().
    With `tls` the port speaks TLS only (mTLS when it names a client CA); certificates replaced on disk are
    served to new connections without a restart.
    """
    # A caller that counts things of its own (the download engine) passes its registry in.
    metrics = metrics or Metrics()
    limits = limits or ServerLimits()
    request_log = RequestLogInterceptor(slow_ms, metrics)
    # Right after the request log, so a refused stream is logged with its request id but costs no token check.
    stream_limit = StreamLimitInterceptor(limits.max_streams_per_client, metrics)
    server = grpc.aio.server(
        # Tracing (when on) outermost: the request log and everything after run inside the call's span.
        interceptors=[*tracing.server_interceptors(), request_log, stream_limit, *interceptors],
        options=[*limits.channel_options(), ("grpc.so_reuseport", 0)],
    )
    names = list(register(server))
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    port = server.add_secure_port(address, tls.credentials()) if tls else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address}")
    await server.start()
    running = RunningServer(
        server=server, port=port, health=health, service_names=names, metrics=metrics, request_log=request_log
    )
    if metrics_addr:
        running.on_stop.append(await start_metrics_endpoint(metrics, metrics_addr))
    for name in ["", *names]:
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    transport = "plaintext" if tls is None else ("mTLS" if tls.mutual else "TLS")
    log.info("mediadl %s serving %s on %s (port %d, %s)", _version(), ", ".join(names), address, port, transport)
    return running


def _version() -> str:
    try:
        return importlib.metadata.version("mediadl")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "(source)"


class StopSignals:
    """SIGINT/SIGTERM caught from the moment this is made: install it before a slow start-up (migrations,
    recovery), so a stop asked for meanwhile is honoured once serving instead of killing the process."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        self.received.append(sig.name)
        self.event.set()


async def serve_until_signalled(
    running: RunningServer, *, grace: float = 10.0, signals: StopSignals | None = None
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully."""
    signals = signals or StopSignals()
    await signals.event.wait()
    log.info("received %s: stopping (grace %.0fs)", signals.received[0], grace)
    await running.stop(grace)
    log.info("stopped")
