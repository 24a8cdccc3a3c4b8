"""The probe over TLS and mTLS against a real grpc.aio server with real certificates (made here)."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from mediadl_common.config import Env
from mediadl_common.healthcheck import check, main
from mediadl_common.tls import ClientTls

NAME = "auth.mediadl.svc"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    dns: str | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    """A CA, a server certificate for NAME, a client certificate, and a CA nobody trusts."""
    ca_key, other_key = _key(), _key()
    ca = _cert("mediadl test CA", ca_key, None, ca=True)
    other = _cert("another CA", other_key, None, ca=True)
    server_key, client_key = _key(), _key()
    server = _cert(NAME, server_key, (ca, ca_key), dns=NAME)
    client = _cert("probe", client_key, (ca, ca_key))
    pem = serialization.Encoding.PEM
    return {
        "ca": _write(tmp_path / "ca.crt", ca.public_bytes(pem)),
        "other_ca": _write(tmp_path / "other.crt", other.public_bytes(pem)),
        "server_cert": _write(tmp_path / "server.crt", server.public_bytes(pem)),
        "server_key": _write(tmp_path / "server.key", _pem(server_key)),
        "client_cert": _write(tmp_path / "client.crt", client.public_bytes(pem)),
        "client_key": _write(tmp_path / "client.key", _pem(client_key)),
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
