"""The shared interceptor chain on a real server: request ids, error boundary, rich statuses, auth, logs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from auth_server.adapters.tokens import JwtIssuer
from mediadl_common.auth_interceptor import AuthInterceptor
from mediadl_common.config import JwtSettings
from mediadl_common.db import DATABASE_UNAVAILABLE, database_unavailable
from mediadl_common.errors import CREDENTIALS_EXPIRED, CREDENTIALS_MISSING, Unauthenticated
from mediadl_common.interceptors import ErrorBoundaryInterceptor
from mediadl_common.log import LogSettings, configure_logging
from mediadl_common.server import RunningServer, start_server
from mediadl_common.tokens import Claims, TokenVerifier
from tests.common import probe

SETTINGS = JwtSettings(secret_key="k" * 48)


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    auth = AuthInterceptor(TokenVerifier(SETTINGS), lambda method: method.endswith("/WhoAmI"))
    boundary = ErrorBoundaryInterceptor(translators=[database_unavailable])
    running = await start_server("127.0.0.1:0", probe.register, [boundary, auth])
    yield running
    await running.stop(0)


@pytest.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


def unary(channel: grpc.aio.Channel, name: str) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(f"/{probe.SERVICE}/{name}")


def details_of(err: grpc.aio.AioRpcError) -> list[object]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    out: list[object] = []
    for packed in status.details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
            if packed.Is(cls.DESCRIPTOR):
                msg = cls()
                packed.Unpack(msg)
                out.append(msg)
    return out


async def test_request_id_echoed_or_generated(channel: grpc.aio.Channel) -> None:
    call = unary(channel, "Ok")(b"x", metadata=(("x-request-id", "req-42"),))
    assert await call == b"ok:x"
    assert ("x-request-id", "req-42") in tuple(await call.trailing_metadata())
    call = unary(channel, "Ok")(b"x", metadata=(("x-request-id", "bad id with spaces"),))
    await call
    generated = dict(tuple(await call.trailing_metadata()))["x-request-id"]
    assert generated != "bad id with spaces" and len(generated) == 32


async def test_domain_errors_carry_reason_and_field_violations(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await unary(channel, "NotFound")(b"", metadata=(("x-request-id", "nf-1"),))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert ("x-request-id", "nf-1") in tuple(info.value.trailing_metadata() or ())
    [error_info] = details_of(info.value)
    assert isinstance(error_info, error_details_pb2.ErrorInfo) and error_info.reason == "NOT_FOUND"

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await unary(channel, "Invalid")(b"")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = next(d for d in details_of(info.value) if isinstance(d, error_details_pb2.BadRequest))
    assert [v.field for v in bad.field_violations] == ["video_id", "title"]


async def test_unexpected_error_is_clean_internal_with_stack_in_log(
    channel: grpc.aio.Channel, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await unary(channel, "Boom")(b"", metadata=(("x-request-id", "boom-7"),))
    finally:
        logging.getLogger().handlers.clear()
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert info.value.details() == "internal error (request id boom-7)"
    raw = capsys.readouterr().err
    errors = [e for e in map(json.loads, raw.splitlines()) if e["level"] == "ERROR"]
    assert errors and errors[0]["request_id"] == "boom-7" and "RuntimeError" in errors[0]["exception"]
    assert "hunter2" not in raw and "s3cr3t" not in raw


async def test_a_lost_database_is_unavailable_only_where_the_translator_is_registered(
    channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await unary(channel, "DbDown")(b"")
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.UNAVAILABLE, "database unavailable, try again")
    [error_info] = details_of(info.value)
    assert isinstance(error_info, error_details_pb2.ErrorInfo) and error_info.reason == DATABASE_UNAVAILABLE

    bare = await start_server("127.0.0.1:0", probe.register, [ErrorBoundaryInterceptor()])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{bare.port}") as other:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await unary(other, "DbDown")(b"")
    finally:
        await bare.stop(0)
    assert info.value.code() == grpc.StatusCode.INTERNAL


class FakeVerifier:
    """The interceptor's only dependency: verify(token) -> claims, or Unauthenticated with a reason."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def verify(self, token: str) -> Claims:
        self.seen.append(token)
        if token != "good":
            raise Unauthenticated("token expired", reason=CREDENTIALS_EXPIRED)
        return Claims(sub="user-7", type="access", jti="j", iat=0, exp=2**40)


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), CREDENTIALS_MISSING),
        ((("authorization", "Bearer good"), ("authorization", "Bearer good")), CREDENTIALS_MISSING),
        ((("authorization", "Basic good"),), CREDENTIALS_MISSING),
        ((("authorization", "Bearer  good"),), CREDENTIALS_MISSING),
        ((("authorization", "Bearer old"),), CREDENTIALS_EXPIRED),
    ],
)
async def test_the_interceptor_only_asks_the_verifier(metadata: tuple[tuple[str, str], ...], reason: str) -> None:
    verifier = FakeVerifier()
    interceptor = AuthInterceptor(verifier, lambda _method: True)
    assert await interceptor.authenticate((("authorization", "Bearer good"),)) == "user-7"
    with pytest.raises(Unauthenticated) as info:
        await interceptor.authenticate(metadata)
    assert info.value.reason == reason
    assert verifier.seen == ["good", "old"] if reason == CREDENTIALS_EXPIRED else ["good"]


async def test_stream_error_after_messages(channel: grpc.aio.Channel) -> None:
    call = channel.unary_stream(f"/{probe.SERVICE}/StreamBoom")(b"")
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for item in call:
            received.append(item)
    assert received == [b"first"] and info.value.code() == grpc.StatusCode.INTERNAL


async def test_auth_interceptor_hands_user_id_and_refuses_missing(channel: grpc.aio.Channel) -> None:
    token, _ = JwtIssuer(SETTINGS).issue(sub="user-1", type="access", ttl_seconds=60)
    assert await unary(channel, "WhoAmI")(b"", metadata=(("authorization", f"Bearer {token}"),)) == b"user-1"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await unary(channel, "WhoAmI")(b"")
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    [error_info] = details_of(info.value)
    assert isinstance(error_info, error_details_pb2.ErrorInfo) and error_info.reason == "CREDENTIALS_MISSING"
    # Methods outside the protected set stay open.
    assert await unary(channel, "Ok")(b"y") == b"ok:y"


async def test_json_logs_share_request_id_and_stream_end_is_logged(
    channel: grpc.aio.Channel, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LogSettings(level="DEBUG", format="json"))
    try:
        token, _ = JwtIssuer(SETTINGS).issue(sub="user-9", type="access", ttl_seconds=60)
        meta = (("x-request-id", "json-1"), ("authorization", f"Bearer {token}"))
        await unary(channel, "WhoAmI")(b"", metadata=meta)
        items = [
            m
            async for m in channel.unary_stream(f"/{probe.SERVICE}/Stream")(
                b"4", metadata=(("x-request-id", "json-2"),)
            )
        ]
        assert len(items) == 4
    finally:
        logging.getLogger().handlers.clear()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line parses
    assert all(
        {"time", "level", "logger", "module", "function", "line", "message", "request_id"} <= e.keys() for e in entries
    )
    call_lines = [e for e in entries if e["request_id"] == "json-1"]
    assert any(e.get("status_code") == "OK" and e.get("user_id") == "user-9" and "duration_ms" in e for e in call_lines)
    stream_end = [e for e in entries if e["request_id"] == "json-2" and "messages_sent" in e]
    assert stream_end and stream_end[0]["messages_sent"] == 4 and stream_end[0]["stream_end"] == "completed"
    assert token not in "\n".join(lines)
