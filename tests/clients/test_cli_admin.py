"""`mediadl admin users list|deactivate|activate|promote|demote` as a subprocess against real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clients.cli import exit_codes
from clients.testing import MediadlServers, mediadl_servers
from tests.clients.cli_runner import run_cli
from tests.clients.test_cli import assert_clean_failure, signed_up

ROOT_PASSWORD = "root password 123"
ADMIN_ENV = {
    "AUTH_FIRST_SUPERUSER_EMAIL": "root@example.com",
    "AUTH_FIRST_SUPERUSER_USERNAME": "root",
    "AUTH_FIRST_SUPERUSER_PASSWORD": ROOT_PASSWORD,
}


@pytest.fixture
async def admin_servers(tmp_path: Path) -> AsyncIterator[MediadlServers]:
    async with mediadl_servers(tmp_path / "servers", env=ADMIN_ENV) as running:
        yield running


async def test_a_superuser_lists_deactivates_activates_and_promotes(
    admin_servers: MediadlServers, tmp_path: Path
) -> None:
    servers, admin_home, ada_home = admin_servers, tmp_path / "root", tmp_path / "ada"
    await signed_up(servers, ada_home, "ada")
    login = await run_cli(
        servers, admin_home, "login", "--email", "root@example.com", "--password-stdin", stdin=ROOT_PASSWORD + "\n"
    )
    assert login.code == 0, login

    listed = await run_cli(servers, admin_home, "--json", "admin", "users", "list", "--query", "ADA")
    assert listed.code == 0, listed
    assert [(u["username"], u["is_active"]) for u in listed.json()["users"]] == [("ada", True)]
    table = await run_cli(servers, admin_home, "admin", "users", "list")
    assert "root@example.com" in table.stdout and "ada@example.com" in table.stdout
    assert "2 of 2 users" in table.stderr

    off = await run_cli(servers, admin_home, "--json", "admin", "users", "deactivate", "Ada")
    assert off.code == 0 and off.json()["is_active"] is False, off
    # Ada's own CLI is refused at once: her access token is revoked.
    whoami = await run_cli(servers, ada_home, "whoami")
    assert whoami.code == exit_codes.AUTH, whoami

    on = await run_cli(servers, admin_home, "admin", "users", "activate", "ada@example.com")
    assert on.code == 0 and "activated ada" in on.stdout, on
    promoted = await run_cli(servers, admin_home, "--json", "admin", "users", "promote", "ada")
    assert promoted.json()["is_superuser"] is True
    demoted = await run_cli(servers, admin_home, "--json", "admin", "users", "demote", promoted.json()["id"])
    assert demoted.json()["is_superuser"] is False


async def test_refusals_are_one_line_with_their_exit_codes(admin_servers: MediadlServers, tmp_path: Path) -> None:
    servers, admin_home, ada_home = admin_servers, tmp_path / "root", tmp_path / "ada"
    await signed_up(servers, ada_home, "ada")
    await run_cli(
        servers, admin_home, "login", "--email", "root@example.com", "--password-stdin", stdin=ROOT_PASSWORD + "\n"
    )
    assert_clean_failure(
        await run_cli(servers, admin_home, "admin", "users", "deactivate", "root"), exit_codes.FAILED_PRECONDITION
    )
    assert_clean_failure(
        await run_cli(servers, admin_home, "admin", "users", "promote", "nobody"), exit_codes.NOT_FOUND, "nobody"
    )
    assert_clean_failure(await run_cli(servers, ada_home, "admin", "users", "list"), exit_codes.AUTH)
