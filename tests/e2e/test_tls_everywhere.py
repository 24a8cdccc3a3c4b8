"""mTLS everywhere: both servers require client certificates, the download server calls the auth server with
its own (revocations still arrive), and the client library, the CLI and the dashboard all get through."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from clients import AuthenticationError
from clients.cli import exit_codes
from clients.testing import TEST_PASSWORD, MediadlServers, mediadl_servers
from clients.tls import tls_credentials
from dashboard.app import create_app
from dashboard.upstream import Upstream
from tests.clients.cli_runner import run_cli
from tests.dashboard.helpers import Browser, dashboard_settings
from tests.support.certs import TestCa

ROOT_PASSWORD = "root password 123"


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "pki")


@pytest.fixture
async def mtls_servers(ca: TestCa, tmp_path: Path) -> AsyncIterator[MediadlServers]:
    auth, download, caller = ca.issue("auth"), ca.issue("download"), ca.issue("download-caller", server=False)
    env = {
        "AUTH_TLS_CERT_FILE": str(auth.cert_file),
        "AUTH_TLS_KEY_FILE": str(auth.key_file),
        "AUTH_TLS_CLIENT_CA_FILE": str(ca.ca_file),
        "DOWNLOAD_TLS_CERT_FILE": str(download.cert_file),
        "DOWNLOAD_TLS_KEY_FILE": str(download.key_file),
        "DOWNLOAD_TLS_CLIENT_CA_FILE": str(ca.ca_file),
        # What the download server trusts and presents when it polls the auth server.
        "TLS_CA_FILE": str(ca.ca_file),
        "TLS_CLIENT_CERT_FILE": str(caller.cert_file),
        "TLS_CLIENT_KEY_FILE": str(caller.key_file),
        "DOWNLOAD_REVOCATION_POLL_SECONDS": "1",
        "AUTH_FIRST_SUPERUSER_EMAIL": "root@example.com",
        "AUTH_FIRST_SUPERUSER_USERNAME": "root",
        "AUTH_FIRST_SUPERUSER_PASSWORD": ROOT_PASSWORD,
    }
    async with mediadl_servers(tmp_path / "servers", env=env) as running:
        yield running


async def test_the_client_library_over_mtls_and_revocation_through_it(mtls_servers: MediadlServers, ca: TestCa) -> None:
    me = ca.issue("ada-laptop", server=False)
    creds = tls_credentials(ca_file=ca.ca_file, cert_file=me.cert_file, key_file=me.key_file)
    ada = await mtls_servers.logged_in_client(username="ada", credentials=creds)
    assert (await ada.list_tasks()).total_size == 0
    root = await mtls_servers.client(credentials=creds)
    await root.login("root@example.com", ROOT_PASSWORD)

    await root.update_user((await ada.whoami()).id, is_active=False)
    started = time.monotonic()
    while True:  # the download server learns it over its own mTLS connection to the auth server
        try:
            await ada.list_tasks()
        except AuthenticationError as refused:
            assert refused.reason == "CREDENTIALS_REVOKED"
            break
        assert time.monotonic() - started < 10
        await asyncio.sleep(0.1)


async def test_the_cli_with_tls_options(mtls_servers: MediadlServers, ca: TestCa, tmp_path: Path) -> None:
    me = ca.issue("cli", server=False)
    tls = ["--tls-ca", str(ca.ca_file), "--tls-cert", str(me.cert_file), "--tls-key", str(me.key_file)]
    registered = await run_cli(
        mtls_servers, tmp_path, *tls, "register", "--email", "cli@example.com", "--username", "cli",
        "--password-stdin", stdin=TEST_PASSWORD + "\n",
    )  # fmt: skip
    assert registered.code == 0, registered
    env = {
        "TLS_CA_FILE": str(ca.ca_file),
        "TLS_CLIENT_CERT_FILE": str(me.cert_file),
        "TLS_CLIENT_KEY_FILE": str(me.key_file),
    }
    login = await run_cli(
        mtls_servers, tmp_path, "login", "--email", "cli@example.com", "--password-stdin",
        stdin=TEST_PASSWORD + "\n", env=env,
    )  # fmt: skip
    assert login.code == 0, login
    no_certificate = await run_cli(mtls_servers, tmp_path, "--tls-ca", str(ca.ca_file), "--timeout", "3", "whoami")
    assert no_certificate.code == exit_codes.UNAVAILABLE, no_certificate
    plaintext = await run_cli(mtls_servers, tmp_path, "--timeout", "3", "whoami")
    assert plaintext.code == exit_codes.UNAVAILABLE, plaintext


async def test_the_dashboard_reaches_the_servers_over_mtls(mtls_servers: MediadlServers, ca: TestCa) -> None:
    me = ca.issue("dashboard", server=False)
    creds = tls_credentials(ca_file=ca.ca_file, cert_file=me.cert_file, key_file=me.key_file)
    user = await mtls_servers.logged_in_client(username="dash_user", credentials=creds)
    upstream = Upstream(mtls_servers.auth_addr, mtls_servers.download_addr, credentials=creds)
    server = TestServer(create_app(dashboard_settings(), upstream=upstream))
    await server.start_server()
    browser = Browser.open(server.make_url("/"))
    try:
        status, session = await browser.get("/api/session")
        browser.csrf = session["csrf_token"]
        email = (await user.whoami()).email
        status, body = await browser.post("/api/login", {"email": email, "password": TEST_PASSWORD})
        assert status == 200 and body["user"]["username"] == "dash_user", body
    finally:
        await browser.close()
        await server.close()
