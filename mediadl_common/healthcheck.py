"""`python -m mediadl_common.healthcheck HOST:PORT`: exit 0 when the server reports SERVING (container probes).

Over TLS when TLS_CA_FILE (and for mTLS TLS_CLIENT_CERT_FILE / _KEY_FILE) are set, as for every caller.
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mediadl_common.config import ConfigError, Env
from mediadl_common.tls import ClientTls


def _channel(address: str, tls: ClientTls | None) -> grpc.Channel:
    if tls is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, tls.credentials())


def check(address: str, service: str = "", timeout: float = 3.0, tls: ClientTls | None = None) -> bool:
    with _channel(address, tls) as channel:
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
    try:
        tls = ClientTls.from_env(Env(dict(os.environ)))
    except ConfigError as exc:
        print(f"NOT SERVING: {exc}", file=sys.stderr)
        return 1
    ok = check(argv[0], argv[1] if len(argv) == 2 else "", tls=tls)
    print("SERVING" if ok else "NOT SERVING")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
