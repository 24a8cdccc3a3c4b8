"""ResourceExhausted in the shared error table: RESOURCE_EXHAUSTED with ErrorInfo reason and a RetryInfo delay."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

from mediadl_common.errors import ResourceExhausted
from mediadl_common.grpc_status import status_for


def _details(status: grpc.Status) -> tuple[str | None, float | None]:
    raw = dict(status.trailing_metadata)["grpc-status-details-bin"]
    proto = status_pb2.Status.FromString(raw)
    assert proto.code == status.code.value[0] and proto.message == status.details
    reason, delay = None, None
    for detail in proto.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            delay = retry.retry_delay.ToNanoseconds() / 1e9
    return reason, delay


def test_resource_exhausted_carries_reason_and_retry_delay() -> None:
    status = status_for(ResourceExhausted("slow down", reason="LOGIN_THROTTLED", retry_after=2.5))
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status.details == "slow down"
    assert _details(status) == ("LOGIN_THROTTLED", 2.5)


def test_without_a_known_delay_there_is_no_retry_info() -> None:
    status = status_for(ResourceExhausted("too many streams"))
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _details(status) == ("RESOURCE_EXHAUSTED", None)
