"""`python -m mediadl_common.healthcheck HOST:PORT [SERVICE]`: exit 0 when the server reports SERVING (probes).

Speaks TLS when TLS_CA_FILE is set (and presents TLS_CLIENT_CERT_FILE/_KEY_FILE for mTLS), the settings
every caller reads; `--tls-server-name` checks the certificate against that name while connecting to
another address (a pod probing itself on 127.0.0.1 with a certificate made for its Service name).
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mediadl_common.config import ConfigError, Env
from mediadl_common.tls import ClientTls


def check(
    address: str,
    service: str = "",
    timeout: float = 3.0,
    *,
    tls: ClientTls | None = None,
    server_name: str | None = None,
) -> bool:
    with open_channel(address, tls, server_name) as channel:
        return probe(channel, service, timeout)


def open_channel(address: str, tls: ClientTls | None, server_name: str | None = None) -> grpc.Channel:
    if tls is None:
        return grpc.insecure_channel(address)
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(address, tls.credentials(), options=options)


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
    parser = argparse.ArgumentParser(prog="python -m mediadl_common.healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("address", metavar="HOST:PORT")
    parser.add_argument("service", nargs="?", default="", help="a service name (default: the whole server)")
    parser.add_argument("--tls-server-name", help="the name the server's certificate must carry (TLS only)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    args = parser.parse_args(argv)
    try:
        tls = ClientTls.from_env(Env(dict(os.environ)))
        ok = check(args.address, args.service, args.timeout, tls=tls, server_name=args.tls_server_name)
    except (ConfigError, OSError) as exc:  # a missing or unreadable certificate file
        print(f"NOT SERVING: {exc}", file=sys.stderr)
        return 1
    print("SERVING" if ok else "NOT SERVING")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
