"""The download server's revocation poller over mTLS: after a refused handshake it reconnects with the TLS
files as they are now, so a client certificate renewed on disk is used without a restart."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from download_server.adapters.revocations import RevocationPoller
from mediadl_common import tls
from mediadl_common.revocations import RevocationList
from tests.auth.helpers import auth_settings, running_auth_server
from tests.support.certs import TestCa

SERVICE_TOKEN = "poll-service-token-0123456789abcdef"


async def test_a_renewed_client_certificate_is_picked_up_after_a_refusal(
    make_database_url: Callable[[str], str], tmp_path: Path
) -> None:
    ca, stranger = TestCa(tmp_path / "ca"), TestCa(tmp_path / "stranger", name="old CA")
    server = ca.issue("auth")
    live_cert, live_key = tmp_path / "client.pem", tmp_path / "client.key"
    old = stranger.issue("old-client", server=False)  # signed by a CA the server no longer trusts
    shutil.copy(old.cert_file, live_cert)
    shutil.copy(old.key_file, live_key)
    env = {
        "AUTH_TLS_CERT_FILE": str(server.cert_file),
        "AUTH_TLS_KEY_FILE": str(server.key_file),
        "AUTH_TLS_CLIENT_CA_FILE": str(ca.ca_file),
        "AUTH_SERVICE_TOKEN": SERVICE_TOKEN,
    }
    async with running_auth_server(auth_settings(make_database_url("sqlite"), **env)) as auth:
        client_tls = tls.ClientTls(str(ca.ca_file), str(live_cert), str(live_key))
        address = f"127.0.0.1:{auth.running.port}"
        revocations = RevocationList()
        poller = RevocationPoller(
            lambda: tls.channel(address, client_tls), SERVICE_TOKEN, revocations, CollectorRegistry(), interval=1
        )
        try:
            assert not await poller.poll_once()
            renewed = ca.issue("renewed-client", server=False)
            shutil.copy(renewed.cert_file, live_cert)
            shutil.copy(renewed.key_file, live_key)
            assert await poller.poll_once()
            assert revocations.last_update is not None
        finally:
            await poller.close()
