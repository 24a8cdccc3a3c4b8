"""A tiny raw-bytes gRPC service for testing the shared interceptors without any real servicer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from sqlalchemy.exc import OperationalError

from mediadl_common import context
from mediadl_common.errors import FieldViolation, InvalidArgument, NotFound

SERVICE = "test.v1.Probe"


def _identity(data: bytes) -> bytes:
    return data


async def ok(request: bytes, _ctx: Any) -> bytes:
    return b"ok:" + request


async def whoami(_request: bytes, _ctx: Any) -> bytes:
    return context.current_user_id().encode()


async def not_found(_request: bytes, _ctx: Any) -> bytes:
    raise NotFound("task not found")


async def invalid(_request: bytes, _ctx: Any) -> bytes:
    raise InvalidArgument([FieldViolation("video_id", "must be a UUID"), FieldViolation("title", "too long")])


async def boom(_request: bytes, _ctx: Any) -> bytes:
    # The message holds something that must never reach the client or the logs in clear.
    raise RuntimeError("kaboom with password=hunter2 at https://origin/x?sig=s3cr3t")


async def db_down(_request: bytes, _ctx: Any) -> bytes:
    # What SQLAlchemy raises when the database has gone away mid-call.
    raise OperationalError("SELECT 1", {}, ConnectionError("server closed the connection unexpectedly"))


async def stream(request: bytes, _ctx: Any) -> AsyncIterator[bytes]:
    for i in range(int(request or b"3")):
        yield str(i).encode()


async def stream_boom(_request: bytes, _ctx: Any) -> AsyncIterator[bytes]:
    yield b"first"
    raise RuntimeError("stream kaboom")


# Set by a test: Slow announces it started, then waits for release, so a call can be held in flight.
slow_started = asyncio.Event()
release_slow = asyncio.Event()


async def slow(_request: bytes, _ctx: Any) -> bytes:
    slow_started.set()
    await release_slow.wait()
    return b"finished"


def register(server: grpc.aio.Server) -> Sequence[str]:
    unary = {"Ok": ok, "WhoAmI": whoami, "NotFound": not_found, "Invalid": invalid, "Boom": boom, "Slow": slow}
    unary["DbDown"] = db_down
    handlers: dict[str, grpc.RpcMethodHandler] = {
        name: grpc.unary_unary_rpc_method_handler(fn, _identity, _identity) for name, fn in unary.items()
    }
    handlers["Stream"] = grpc.unary_stream_rpc_method_handler(stream, _identity, _identity)
    handlers["StreamBoom"] = grpc.unary_stream_rpc_method_handler(stream_boom, _identity, _identity)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    return [SERVICE]
