"""What a failed gRPC call told the client: code, message, ErrorInfo reason and BadRequest field violations."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass
class RpcFailure:
    """A failed call as a client sees it: code, message and the google.rpc details."""

    code: grpc.StatusCode
    message: str
    reason: str | None
    violations: dict[str, str]


async def rpc_failure(call: Awaitable[Any]) -> RpcFailure:
    """Await a call that must fail and return its status; the call succeeding fails the test."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return status_of(err)
    raise AssertionError("the call succeeded but was expected to fail")


async def stream_failure(call: Any) -> RpcFailure:
    """Read a server stream that must fail before its first message."""
    try:
        async for _ in call:
            raise AssertionError("the stream yielded a message but was expected to fail")
    except grpc.aio.AioRpcError as err:
        return status_of(err)
    raise AssertionError("the stream ended cleanly but was expected to fail")


def status_of(err: grpc.aio.AioRpcError) -> RpcFailure:
    status = rpc_status.from_call(err)
    reason, violations = None, {}
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = {v.field: v.description for v in bad.field_violations}
    return RpcFailure(err.code(), err.details() or "", reason, violations)
