"""The container probe's client side against grpcio-testing's channel, where the test plays the server.

grpc_testing has no grpc.aio support, so the servers' own (async) servicers are tested over real sockets
elsewhere; the probe is a plain synchronous client, which is what grpc_testing.channel is made for: each
test sees the exact request the probe sends and answers it with any status, including ones a live server
is hard to make send (UNKNOWN, a deadline exceeded). grpc_testing enforces no deadlines, so the probe's own
timeout is not tested here.
"""

from __future__ import annotations

import threading

import grpc
import grpc_testing
import pytest
from grpc_health.v1 import health_pb2

from mediadl_common.healthcheck import probe

CHECK = health_pb2.DESCRIPTOR.services_by_name["Health"].methods_by_name["Check"]
Status = health_pb2.HealthCheckResponse


def answered(response: health_pb2.HealthCheckResponse | None, code: grpc.StatusCode, service: str = "") -> bool:
    """Run the probe on a grpc_testing channel; the 'server' answers `response` with `code`."""
    channel = grpc_testing.channel([health_pb2.DESCRIPTOR.services_by_name["Health"]], grpc_testing.strict_real_time())
    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(probe(channel, service, timeout=2.5)))
    worker.start()
    _metadata, request, rpc = channel.take_unary_unary(CHECK)
    assert request == health_pb2.HealthCheckRequest(service=service)
    rpc.terminate(response or Status(), (), code, "")
    worker.join(timeout=5)
    assert not worker.is_alive()
    return result[0]


def test_serving_is_up_and_the_probe_asks_for_the_named_service() -> None:
    assert answered(Status(status=Status.SERVING), grpc.StatusCode.OK, service="mediadl.download.v1.DownloadService")


@pytest.mark.parametrize("status", [Status.NOT_SERVING, Status.UNKNOWN, Status.SERVICE_UNKNOWN])
def test_anything_but_serving_is_down(status: int) -> None:
    assert answered(Status(status=status), grpc.StatusCode.OK) is False


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.NOT_FOUND]
)
def test_an_error_status_is_down(code: grpc.StatusCode) -> None:
    assert answered(None, code) is False
