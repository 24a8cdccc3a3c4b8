"""The probe over TLS and mTLS against a real grpc.aio server with real certificates (tests/support/certs.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from mediadl_common.config import Env
from mediadl_common.healthcheck import check, main
from mediadl_common.tls import ClientTls
from tests.support.certs import TestCa

NAME = "auth.mediadl.svc"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    """A CA, a server certificate for NAME, a client certificate, and a CA nobody trusts."""
    ca, other = TestCa(tmp_path / "ca"), TestCa(tmp_path / "other", name="another CA")
    server, client = ca.issue("server", hosts=(NAME,)), ca.issue("probe", server=False)
    return {
        "ca": str(ca.ca_file),
        "other_ca": str(other.ca_file),
        "server_cert": str(server.cert_file),
        "server_key": str(server.key_file),
        "client_cert": str(client.cert_file),
        "client_key": str(client.key_file),
    }


def _server_credentials(pki: dict[str, str]) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(Path(pki["server_key"]).read_bytes(), Path(pki["server_cert"]).read_bytes())],
        root_certificates=Path(pki["ca"]).read_bytes(),
        require_client_auth=True,
    )


@pytest.fixture
async def mtls_server(pki: dict[str, str]) -> AsyncIterator[int]:
    """A health service that speaks TLS only and requires a client certificate from the CA."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", _server_credentials(pki))
    await server.start()
    yield port
    await server.stop(0)


async def probe_with(port: int, env: dict[str, str], server_name: str | None = NAME) -> bool:
    tls = ClientTls.from_env(Env(env))  # what every caller reads: TLS_CA_FILE, TLS_CLIENT_CERT_FILE/_KEY_FILE
    return await asyncio.to_thread(check, f"127.0.0.1:{port}", "", 3.0, tls=tls, server_name=server_name)


async def test_the_probe_speaks_mtls_with_the_mounted_material(mtls_server: int, pki: dict[str, str]) -> None:
    env = {
        "TLS_CA_FILE": pki["ca"],
        "TLS_CLIENT_CERT_FILE": pki["client_cert"],
        "TLS_CLIENT_KEY_FILE": pki["client_key"],
    }
    assert await probe_with(mtls_server, env)


async def test_the_probe_is_refused_without_what_the_server_demands(mtls_server: int, pki: dict[str, str]) -> None:
    client = {"TLS_CLIENT_CERT_FILE": pki["client_cert"], "TLS_CLIENT_KEY_FILE": pki["client_key"]}
    assert not await probe_with(mtls_server, {"TLS_CA_FILE": pki["ca"]})  # no client certificate
    assert not await probe_with(mtls_server, {"TLS_CA_FILE": pki["other_ca"], **client})  # server not trusted
    assert not await probe_with(mtls_server, {"TLS_CA_FILE": pki["ca"], **client}, server_name="other.name")
    assert not await probe_with(mtls_server, {})  # plaintext to a TLS-only server


def test_the_command_line_says_why_it_is_down(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TLS_CA_FILE", "/nonexistent/ca.crt")
    assert main(["127.0.0.1:1", "--tls-server-name", NAME]) == 1
    assert "NOT SERVING" in capsys.readouterr().err
