"""Server limits against real servers: oversized messages refused, streams per connection and per client bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mediadl.auth.v1 import auth_pb2
from mediadl.download.v1 import download_pb2 as pb
from mediadl_common.limits import STREAM_LIMIT, ServerLimits
from mediadl_common.server import RunningServer, start_server
from tests.auth.helpers import auth_settings, running_auth_server
from tests.download.api import download_settings, new_id, running_download_server
from tests.proof.statuses import refusal_of, refused

SERVICE = "test.v1.Holder"
MiB = 1024 * 1024


class Holder:
    """A stream that sends one message and then stays open until the client leaves; counts who is inside."""

    def __init__(self) -> None:
        self.open = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def _set_open(self, count: int) -> None:
        # No await here: the interceptors' own bookkeeping, further out, finishes before any waiter resumes.
        self.open = count
        for wanted, future in self._waiters:
            if wanted == count and not future.done():
                future.set_result(None)

    async def hold(self, _request: bytes, _ctx: Any) -> AsyncIterator[bytes]:
        self._set_open(self.open + 1)
        try:
            yield b"open"
            await asyncio.Event().wait()
        finally:
            self._set_open(self.open - 1)

    async def echo(self, request: bytes, _ctx: Any) -> bytes:
        return request

    async def until_open(self, count: int) -> None:
        if self.open == count:
            return
        entry = (count, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await entry[1]
        finally:
            self._waiters.remove(entry)

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        handlers = {
            "Hold": grpc.unary_stream_rpc_method_handler(self.hold, bytes, bytes),
            "Echo": grpc.unary_unary_rpc_method_handler(self.echo, bytes, bytes),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        return [SERVICE]


@asynccontextmanager
async def holder_server(limits: ServerLimits) -> AsyncIterator[tuple[Holder, RunningServer]]:
    holder = Holder()
    running = await start_server("127.0.0.1:0", holder.register, limits=limits)
    try:
        yield holder, running
    finally:
        await running.stop(0)


def channel(port: int, *, own_connection: bool = False) -> grpc.aio.Channel:
    # Channels with equal options share one pooled connection; a local pool forces a connection of its own.
    options = [("grpc.use_local_subchannel_pool", 1)] if own_connection else []
    return grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options)


async def open_stream(ch: grpc.aio.Channel, **kwargs: Any) -> Any:
    call = ch.unary_stream(f"/{SERVICE}/Hold")(b"", **kwargs)
    assert await call.read() == b"open"
    return call


async def healthy(port: int) -> bool:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)  # type: ignore[no-untyped-call]
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def test_a_message_over_the_receive_limit_is_refused_and_the_server_goes_on() -> None:
    async with holder_server(ServerLimits(max_receive_bytes=MiB)) as (_holder, running):
        async with channel(running.port) as ch:
            echo = ch.unary_unary(f"/{SERVICE}/Echo")
            assert await echo(b"x" * (MiB - 64)) == b"x" * (MiB - 64)
            too_big = await refused(echo(b"x" * (MiB + 1)))
            assert too_big.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert await echo(b"still here") == b"still here"
        assert await healthy(running.port)


async def test_the_real_servers_refuse_oversized_requests(
    make_database_url: Callable[[str], str], tmp_path: Path
) -> None:
    huge = "a" * (2 * MiB)
    async with running_auth_server(auth_settings(make_database_url("sqlite"))) as auth:
        request = auth_pb2.RegisterRequest(
            email="x@example.com", username="xyz", password="long enough", full_name=huge
        )
        assert (await refused(auth.stub.Register(request))).code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await healthy(auth.running.port)
    settings = download_settings(make_database_url("sqlite"), tmp_path / "storage")
    async with running_download_server(settings) as api:
        user = new_id()
        create = pb.CreateTaskRequest(
            video_id=new_id(), liveroom_id="r", resource_url=huge, resource_type=pb.RESOURCE_TYPE_MP4
        )
        assert (await refused(api.stub.CreateTask(create, metadata=api.auth(user)))).code == (
            grpc.StatusCode.RESOURCE_EXHAUSTED
        )
        # Under the limit, the same field is a plain validation error naming it.
        create.resource_url = "https://cdn.example.com/" + "a" * 4000
        too_long = await refused(api.stub.CreateTask(create, metadata=api.auth(user)))
        assert too_long.code == grpc.StatusCode.INVALID_ARGUMENT and "resource_url" in too_long.message
        assert await healthy(api.running.port)


async def test_streams_over_the_per_connection_limit_wait_in_the_client() -> None:
    async with holder_server(ServerLimits(max_concurrent_streams=4)) as (holder, running):
        async with channel(running.port) as ch:
            calls = [await open_stream(ch) for _ in range(4)]
            # The fifth is held back by HTTP/2 flow control: it never reaches the server before its deadline.
            fifth = ch.unary_stream(f"/{SERVICE}/Hold")(b"", timeout=1.0)
            try:
                await fifth.read()
                raise AssertionError("the fifth stream was served")
            except grpc.aio.AioRpcError as err:
                assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert holder.open == 4
            calls.pop().cancel()
            await holder.until_open(3)
            calls.append(await open_stream(ch))  # a slot freed: the next one goes through
            assert holder.open == 4
            # Unary calls on the same connection are streams too: they wait for a slot as well, and get one.
            echo = asyncio.ensure_future(ch.unary_unary(f"/{SERVICE}/Echo")(b"ping"))
            calls.pop().cancel()
            assert await echo == b"ping"
            for call in calls:
                call.cancel()


async def test_streams_over_the_per_client_limit_are_refused_across_connections() -> None:
    async with holder_server(ServerLimits(max_streams_per_client=3)) as (holder, running):
        first, second = channel(running.port, own_connection=True), channel(running.port, own_connection=True)
        try:
            calls = [await open_stream(first), await open_stream(first), await open_stream(second)]
            for ch in (first, second):
                call = ch.unary_stream(f"/{SERVICE}/Hold")(b"")
                try:
                    await call.read()
                    raise AssertionError("a fourth stream was served")
                except grpc.aio.AioRpcError as err:
                    over = refusal_of(err)
                assert (over.code, over.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, STREAM_LIMIT)
                assert "at most 3" in over.message
            assert holder.open == 3
            # Unary calls are not streams: they still work.
            assert await first.unary_unary(f"/{SERVICE}/Echo")(b"ping") == b"ping"
            refusals = running.metrics.registry.get_sample_value("mediadl_rpc_streams_refused_total")
            assert refusals == 2
            calls.pop(0).cancel()
            await holder.until_open(2)
            calls.append(await open_stream(second))  # the count went down with the closed stream
            for call in calls:
                call.cancel()
            await holder.until_open(0)
            assert await healthy(running.port)
        finally:
            await first.close()
            await second.close()
