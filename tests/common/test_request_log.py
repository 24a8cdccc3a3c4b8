"""The request log never touches the call's peer after the client has gone (grpcio 1.85 can segfault there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from mediadl_common.request_log import RequestLogInterceptor


class GoneClientContext:
    """Enough of a ServicerContext; peer() fails once the client has gone, as the real one may crash."""

    def __init__(self) -> None:
        self.gone = False
        self.trailers: tuple[tuple[str, str], ...] = ()

    def peer(self) -> str:
        assert not self.gone, "peer() read after the client went away"
        return "ipv4:127.0.0.1:5555"

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.trailers = metadata

    def code(self) -> grpc.StatusCode | None:
        return None

    def cancelled(self) -> bool:
        return self.gone


class Details:
    method = "/test.v1.Probe/Stream"
    invocation_metadata = (("x-request-id", "gone-1"),)


async def test_stream_end_after_the_client_left_does_not_read_the_peer() -> None:
    async def numbers(_request: bytes, _ctx: Any) -> AsyncIterator[bytes]:
        for i in range(10):
            yield str(i).encode()

    async def continuation(_details: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_stream_rpc_method_handler(numbers)

    interceptor = RequestLogInterceptor()
    handler = await interceptor.intercept_service(continuation, Details())
    ctx = GoneClientContext()
    stream = handler.unary_stream(b"", ctx)
    assert await stream.__anext__() == b"0"
    ctx.gone = True  # the client disconnects mid-stream; grpc closes the generator
    await stream.aclose()
    assert ("x-request-id", "gone-1") in ctx.trailers
    assert interceptor.in_flight == 0
