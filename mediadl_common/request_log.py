"""The outermost interceptor: a request id per call, and one log line per call with code and duration."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from mediadl_common import context
from mediadl_common.interceptors import StreamBehavior, UnaryBehavior, wrap_handler
from mediadl_common.metrics import Metrics

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
# A caller's id is echoed into logs and trailers: accept only short, plain ones.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def request_id_from(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str) and _VALID_REQUEST_ID.match(value):
            return value
    return uuid.uuid4().hex


class RequestLogInterceptor(grpc.aio.ServerInterceptor):
    """Sets the request id (from `x-request-id` or new), returns it in trailers, logs start and end.

    Calls slower than `slow_ms` are logged at WARNING. Streams log how many messages they sent and why
    they ended. Health checks log at DEBUG only, so probes do not flood the logs.
    """

    def __init__(self, slow_ms: float = 1000.0, metrics: Metrics | None = None) -> None:
        self._slow_ms = slow_ms
        # Metrics ride on this interceptor: it already knows every call's method, code and duration.
        self._metrics = metrics
        # Calls between start and end, for the shutdown log line.
        self.in_flight = 0

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        metadata = handler_call_details.invocation_metadata
        quiet = method.startswith(_QUIET_PREFIXES)

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def run(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
                rid = self._begin(ctx, metadata, method, quiet, streaming=False)
                peer = ctx.peer()
                started = time.perf_counter()
                try:
                    return await behavior(request, ctx)
                finally:
                    self._end(ctx, method, started, quiet, rid, peer)

            return run

        def stream(behavior: StreamBehavior) -> StreamBehavior:
            async def run(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                rid = self._begin(ctx, metadata, method, quiet, streaming=True)
                # Read now: grpcio (1.85) segfaults on ctx.peer() once the client has gone away mid-stream.
                peer = ctx.peer()
                started = time.perf_counter()
                sent = 0
                ended = "completed"
                try:
                    async for response in behavior(request, ctx):
                        sent += 1
                        yield response
                except BaseException as exc:
                    ended = "client went away" if ctx.cancelled() or isinstance(exc, GeneratorExit) else "error"
                    raise
                finally:
                    self._end(ctx, method, started, quiet, rid, peer, sent=sent, ended=ended)

            return run

        return wrap_handler(handler, unary, stream)

    def _begin(
        self,
        ctx: grpc.aio.ServicerContext[Any, Any],
        metadata: tuple[tuple[str, str | bytes], ...] | None,
        method: str,
        quiet: bool,
        *,
        streaming: bool,
    ) -> str:
        if self._metrics is not None:
            self._metrics.call_started(method, streaming)
        self.in_flight += 1
        rid = request_id_from(metadata)
        context.request_id.set(rid)
        ctx.set_trailing_metadata(((REQUEST_ID_HEADER, rid),))
        if not quiet:
            log.debug("started %s", method, extra={"method": method, "peer": ctx.peer()})
        return rid

    def _end(
        self,
        ctx: grpc.aio.ServicerContext[Any, Any],
        method: str,
        started: float,
        quiet: bool,
        rid: str,
        peer: str,
        *,
        sent: int | None = None,
        ended: str | None = None,
    ) -> None:
        duration_ms = (time.perf_counter() - started) * 1000
        self.in_flight -= 1
        code = ctx.code() or grpc.StatusCode.OK
        code_name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        if self._metrics is not None:
            self._metrics.call_ended(method, code_name, duration_ms / 1000, streaming=sent is not None)
        extra: dict[str, Any] = {
            "method": method,
            "status_code": code_name,
            "duration_ms": round(duration_ms, 2),
            "peer": peer,
        }
        text = f"{method} {code_name} in {duration_ms:.1f} ms"
        if sent is not None:
            extra.update(messages_sent=sent, stream_end=ended)
            text += f" ({sent} messages, {ended})"
        if quiet:
            level = logging.DEBUG
        elif duration_ms > self._slow_ms and sent is None:
            level = logging.WARNING
            text = "slow call: " + text
        else:
            level = logging.INFO
        log.log(level, text, extra=extra)
