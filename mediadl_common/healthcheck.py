"""`python -m mediadl_common.healthcheck HOST:PORT`: exit 0 when the server reports SERVING (container probes)."""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(address: str, service: str = "", timeout: float = 3.0) -> bool:
    with grpc.insecure_channel(address) as channel:
        return probe(channel, service, timeout)


def probe(channel: grpc.Channel, service: str = "", timeout: float = 3.0) -> bool:
    """True only for an explicit SERVING: NOT_SERVING, UNKNOWN, an error or no answer in time all count as down."""
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python -m mediadl_common.healthcheck HOST:PORT [SERVICE]", file=sys.stderr)
        return 2
    ok = check(argv[0], argv[1] if len(argv) == 2 else "")
    print("SERVING" if ok else "NOT SERVING")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
