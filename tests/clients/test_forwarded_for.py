"""A proxy (the dashboard) names the browser in login(forwarded_for=...): the auth server, trusting it,
throttles that address and not every user behind the proxy."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients import AuthenticationError, ResourceExhaustedError
from clients.testing import TEST_PASSWORD, mediadl_servers


async def test_failures_of_one_forwarded_address_do_not_throttle_another(tmp_path: Path) -> None:
    env = {"AUTH_TRUSTED_PROXIES": "127.0.0.1/32", "AUTH_LOGIN_PEER_MAX_FAILURES": "3"}
    async with mediadl_servers(tmp_path, env=env) as servers:
        user = await servers.logged_in_client(username="real_user")
        email = (await user.whoami()).email
        proxy = await servers.client()
        for i in range(3):
            with pytest.raises(AuthenticationError):
                await proxy.login(f"guess{i}@example.com", "wrong password", forwarded_for="203.0.113.9")
        with pytest.raises(ResourceExhaustedError):
            await proxy.login("guess@example.com", "wrong password", forwarded_for="203.0.113.9")
        # The same proxy connection, another browser: not throttled.
        assert (await proxy.login(email, TEST_PASSWORD, forwarded_for="198.51.100.1")).username == "real_user"
