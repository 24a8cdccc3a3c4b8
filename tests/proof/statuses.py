"""Read a failed grpc.aio call as a client sees it, including the RetryInfo delay; and a test clock."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    message: str
    reason: str | None
    retry_after: float | None


def refusal_of(err: grpc.aio.AioRpcError) -> Refusal:
    status = rpc_status.from_call(err)
    reason, retry_after = None, None
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    return Refusal(err.code(), err.details() or "", reason, retry_after)


async def refused(call: Awaitable[Any]) -> Refusal:
    """Await a call that must fail; its succeeding fails the test."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return refusal_of(err)
    raise AssertionError("the call succeeded but was expected to fail")


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
