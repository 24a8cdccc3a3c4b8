"""TLS and mTLS on a real server with real certificates: who gets in, who is refused, and a certificate
replaced on disk served to new connections without a restart."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mediadl_common.config import ConfigError, Env
from mediadl_common.tls import ClientTls, ServerTls
from tests.auth.helpers import auth_settings, running_auth_server
from tests.support.certs import Issued, TestCa

# A fresh TCP connection (and handshake) per channel: no sharing of subchannels between test channels.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "ca")


@pytest.fixture
def other_ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "other-ca", name="someone else's CA")


def server_env(server: Issued, client_ca: Path | None = None) -> dict[str, str]:
    env = {"AUTH_TLS_CERT_FILE": str(server.cert_file), "AUTH_TLS_KEY_FILE": str(server.key_file)}
    if client_ca is not None:
        env["AUTH_TLS_CLIENT_CA_FILE"] = str(client_ca)
    return env


@asynccontextmanager
async def tls_auth(database_url: str, env: dict[str, str]) -> AsyncIterator[int]:
    async with running_auth_server(auth_settings(database_url, **env)) as auth:
        yield auth.running.port


async def serving(port: int, credentials: grpc.ChannelCredentials | None) -> bool:
    """True if a health check over these credentials (None: plaintext) gets an answer."""
    target = f"127.0.0.1:{port}"
    channel = (
        grpc.aio.secure_channel(target, credentials, options=OWN_CONNECTION)
        if credentials is not None
        else grpc.aio.insecure_channel(target, options=OWN_CONNECTION)
    )
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as err:
            assert err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), err
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def trusting(ca: TestCa, client: Issued | None = None) -> grpc.ChannelCredentials:
    return ClientTls(str(ca.ca_file), *((str(client.cert_file), str(client.key_file)) if client else ())).credentials()


async def test_tls_admits_clients_trusting_the_ca_and_refuses_the_rest(
    make_database_url: Callable[[str], str], ca: TestCa, other_ca: TestCa
) -> None:
    async with tls_auth(make_database_url("sqlite"), server_env(ca.issue("server"))) as port:
        assert await serving(port, trusting(ca))
        assert not await serving(port, None)  # plaintext
        assert not await serving(port, trusting(other_ca))  # wrong CA


async def test_an_expired_server_certificate_is_refused_by_clients(
    make_database_url: Callable[[str], str], ca: TestCa
) -> None:
    async with tls_auth(make_database_url("sqlite"), server_env(ca.issue("old", expired=True))) as port:
        assert not await serving(port, trusting(ca))


async def test_mtls_requires_a_client_certificate_from_the_client_ca(
    make_database_url: Callable[[str], str], ca: TestCa, other_ca: TestCa
) -> None:
    env = server_env(ca.issue("server"), client_ca=ca.ca_file)
    async with tls_auth(make_database_url("sqlite"), env) as port:
        assert await serving(port, trusting(ca, ca.issue("client", server=False)))
        assert not await serving(port, trusting(ca))  # no client certificate
        assert not await serving(port, trusting(ca, other_ca.issue("stranger", server=False)))
        assert not await serving(port, trusting(ca, ca.issue("expired-client", server=False, expired=True)))


async def test_a_certificate_replaced_on_disk_is_served_without_a_restart(
    make_database_url: Callable[[str], str], ca: TestCa, other_ca: TestCa, tmp_path: Path
) -> None:
    live = Issued(tmp_path / "live" / "server.pem", tmp_path / "live" / "server.key")
    live.cert_file.parent.mkdir()
    first, renewed = ca.issue("first"), other_ca.issue("renewed")
    for source, target in ((first.cert_file, live.cert_file), (first.key_file, live.key_file)):
        shutil.copy(source, target)
    async with tls_auth(make_database_url("sqlite"), server_env(live)) as port:
        assert await serving(port, trusting(ca)) and not await serving(port, trusting(other_ca))

        # Replace atomically (as cert-manager and certbot do): write aside, then rename over.
        for source, target in ((renewed.key_file, live.key_file), (renewed.cert_file, live.cert_file)):
            shutil.copy(source, target.with_suffix(".tmp"))
            os.replace(target.with_suffix(".tmp"), target)

        assert await serving(port, trusting(other_ca))  # a new connection gets the new certificate
        assert not await serving(port, trusting(ca))


def test_settings_refuse_half_pairs_and_unreadable_files(tmp_path: Path, ca: TestCa) -> None:
    server = ca.issue("server")
    assert ServerTls.from_env(Env({}), "AUTH") is None and ClientTls.from_env(Env({})) is None
    cases: list[dict[str, str]] = [
        {"AUTH_TLS_CERT_FILE": str(server.cert_file)},
        {"AUTH_TLS_CLIENT_CA_FILE": str(ca.ca_file)},
        {"AUTH_TLS_CERT_FILE": str(tmp_path / "missing.pem"), "AUTH_TLS_KEY_FILE": str(server.key_file)},
    ]
    for env in cases:
        with pytest.raises(ConfigError, match=r"AUTH_TLS|cannot read"):
            ServerTls.from_env(Env(env), "AUTH")
    with pytest.raises(ConfigError, match="TLS_CLIENT_CERT_FILE"):
        ClientTls.from_env(Env({"TLS_CLIENT_KEY_FILE": str(server.key_file)}))
    with pytest.raises(ConfigError, match="cannot read"):
        ClientTls.from_env(Env({"TLS_CA_FILE": str(tmp_path / "nope.pem")}))
