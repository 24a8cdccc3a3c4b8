"""Server limits against one client hogging a server: message sizes, streams per connection and per client."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from prometheus_client import Counter as PromCounter

from mediadl_common.errors import ResourceExhausted
from mediadl_common.grpc_status import abort, status_for
from mediadl_common.interceptors import StreamBehavior, UnaryBehavior, wrap_handler
from mediadl_common.metrics import Metrics
from mediadl_common.peer import peer_key

log = logging.getLogger(__name__)

STREAM_LIMIT = "STREAM_LIMIT"


@dataclass(frozen=True)
class ServerLimits:
    """Defaults fit mediadl's own traffic with a wide margin.

    No request needs more than a few KiB (URLs are capped at 2 KiB), so 1 MiB refuses junk early; a reply
    is at most a page of 100 records. A dashboard multiplexes every browser session's WatchTasks over one
    connection, hence the generous stream counts; streams beyond `max_concurrent_streams` wait in the
    client (HTTP/2 flow control), those beyond `max_streams_per_client` are refused with RESOURCE_EXHAUSTED.
    """

    max_receive_bytes: int = 1024 * 1024
    max_send_bytes: int = 4 * 1024 * 1024
    max_concurrent_streams: int = 1000
    # Server-streaming calls open at once from one client address (all its connections); 0 means no cap.
    max_streams_per_client: int = 2000

    def channel_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.max_receive_message_length", self.max_receive_bytes),
            ("grpc.max_send_message_length", self.max_send_bytes),
            ("grpc.max_concurrent_streams", self.max_concurrent_streams),
        ]


class StreamLimitInterceptor(grpc.aio.ServerInterceptor):
    """Counts open server-streaming calls per client address and refuses the one over the cap.

    Only streams are counted: a unary call ends by itself, a stream (WatchTasks) may stay open for days.
    """

    def __init__(self, max_per_client: int, metrics: Metrics) -> None:
        self._max = max_per_client
        self._open: Counter[str] = Counter()
        self._refused = PromCounter(
            "mediadl_rpc_streams_refused",
            "Server-streaming calls refused because their client had too many open",
            registry=metrics.registry,
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_stream is None or self._max <= 0:
            return handler
        method = handler_call_details.method

        def stream(behavior: StreamBehavior) -> StreamBehavior:
            async def run(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                client = peer_key(ctx.peer())
                if self._open[client] >= self._max:
                    self._refused.inc()
                    log.warning("refused %s: client %s already has %d open streams", method, client, self._max)
                    refusal = ResourceExhausted(
                        f"too many open streams from this client (at most {self._max}): close one first",
                        reason=STREAM_LIMIT,
                    )
                    await abort(ctx, status_for(refusal))
                self._open[client] += 1
                try:
                    async for response in behavior(request, ctx):
                        yield response
                finally:
                    self._open[client] -= 1
                    if self._open[client] <= 0:
                        del self._open[client]

            return run

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            return behavior

        return wrap_handler(handler, unary, stream)
