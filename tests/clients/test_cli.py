"""The `mediadl` CLI driven as a subprocess against real in-process servers: accounts, tasks, JSON output,
the token file, and the exit code and one-line message of every kind of error."""

from __future__ import annotations

import socket
import stat
import uuid
from pathlib import Path

from clients.testing import TEST_PASSWORD, MediadlServers
from tests.clients.cli_runner import Result, run_cli

URL = "https://media.example.com/live/index.m3u8"


def assert_clean_failure(result: Result, code: int, *fragments: str) -> None:
    assert result.code == code, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mediadl: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


async def signed_up(servers: MediadlServers, home: Path, name: str = "ada") -> None:
    registered = await run_cli(
        servers,
        home,
        "register",
        "--email",
        f"{name}@example.com",
        "--username",
        name,
        "--password-stdin",
        stdin=TEST_PASSWORD + "\n",
    )
    assert registered.code == 0, registered
    logged_in = await run_cli(
        servers, home, "login", "--email", f"{name}@example.com", "--password-stdin", stdin=TEST_PASSWORD + "\n"
    )
    assert logged_in.code == 0, logged_in


async def test_register_login_create_list_show_as_json(sqlite_servers: MediadlServers, tmp_path: Path) -> None:
    servers = sqlite_servers
    registered = await run_cli(
        servers,
        tmp_path,
        "--json",
        "register",
        "--email",
        "ada@example.com",
        "--username",
        "ada",
        "--full-name",
        "Ada L",
        "--password-stdin",
        stdin=TEST_PASSWORD + "\n",
    )
    assert registered.code == 0, registered
    assert registered.json()["username"] == "ada" and "password" not in registered.stdout

    login = await run_cli(
        servers, tmp_path, "login", "--email", "ada@example.com", "--password-stdin", stdin=TEST_PASSWORD + "\n"
    )
    assert login.code == 0 and "logged in as ada" in login.stdout
    token_file = tmp_path / "xdg" / "mediadl" / "tokens.json"  # the default: $XDG_CONFIG_HOME/mediadl
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert TEST_PASSWORD not in token_file.read_text()

    whoami = await run_cli(servers, tmp_path, "--json", "whoami")
    assert whoami.json()["email"] == "ada@example.com"

    video_id = str(uuid.uuid4())
    created = await run_cli(
        servers,
        tmp_path,
        "--json",
        "task",
        "create",
        "--url",
        URL,
        "--liveroom-id",
        "room1",
        "--title",
        "Friday",
        "--video-id",
        video_id,
    )
    assert created.code == 0, created
    task = created.json()
    assert (task["status"], task["resource_type"], task["video_id"]) == ("PENDING", "HLS", video_id)

    listed = await run_cli(servers, tmp_path, "--json", "task", "list")
    body = listed.json()
    assert [t["id"] for t in body["tasks"]] == [task["id"]] and body["total_size"] == 1

    shown = await run_cli(servers, tmp_path, "--json", "task", "show", task["id"][:8])  # a short id is enough
    assert shown.json()["id"] == task["id"]

    table = await run_cli(servers, tmp_path, "task", "list")
    assert table.code == 0 and task["id"][:8] in table.stdout and "PENDING" in table.stdout

    cancelled = await run_cli(servers, tmp_path, "--json", "task", "cancel", task["id"])
    assert cancelled.json()["status"] == "CANCELLED"
    failures = await run_cli(servers, tmp_path, "--json", "failures", "list", "--task", task["id"])
    assert failures.json() == {"failures": [], "next_page_token": "", "total_size": 0}
    videos = await run_cli(servers, tmp_path, "--json", "videos", "list", task["id"])
    assert videos.json()["videos"] == []
    deleted = await run_cli(servers, tmp_path, "task", "delete", task["id"])
    assert deleted.code == 0

    logout = await run_cli(servers, tmp_path, "logout")
    assert logout.code == 0 and not token_file.exists()


async def test_exit_codes_and_messages(sqlite_servers: MediadlServers, tmp_path: Path) -> None:
    servers = sqlite_servers
    assert_clean_failure(await run_cli(servers, tmp_path, "whoami"), 3, "not logged in")
    await signed_up(servers, tmp_path)

    duplicate = await run_cli(
        servers,
        tmp_path,
        "register",
        "--email",
        "ada@example.com",
        "--username",
        "ada",
        "--password-stdin",
        stdin=TEST_PASSWORD + "\n",
    )
    assert_clean_failure(duplicate, 6, "already exists")
    wrong = await run_cli(
        servers, tmp_path / "other", "login", "--email", "ada@example.com", "--password-stdin", stdin="wrong pass 1\n"
    )
    assert_clean_failure(wrong, 3, "login failed")
    missing = await run_cli(servers, tmp_path, "task", "show", str(uuid.uuid4()))
    assert_clean_failure(missing, 4, "not found")
    invalid = await run_cli(
        servers, tmp_path, "task", "create", "--url", "ftp://example.com/a.mp4", "--liveroom-id", "r1"
    )
    assert_clean_failure(invalid, 5, "resource_url")

    created = await run_cli(servers, tmp_path, "--json", "task", "create", "--url", URL, "--liveroom-id", "r1")
    task_id = created.json()["id"]
    assert_clean_failure(await run_cli(servers, tmp_path, "task", "pause", task_id), 6)

    usage = await run_cli(servers, tmp_path, "task", "frobnicate")
    assert usage.code == 2 and "Traceback" not in usage.stderr
    untyped = await run_cli(servers, tmp_path, "task", "create", "--url", "https://example.com/x", "--liveroom-id", "r")
    assert_clean_failure(untyped, 2, "--type")

    json_error = await run_cli(servers, tmp_path, "--json", "task", "show", str(uuid.uuid4()))
    assert json_error.code == 4
    assert '"code":"NOT_FOUND"' in json_error.stderr and "Traceback" not in json_error.stderr


async def test_server_down_is_exit_7(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"  # bound but not listening: connection refused
        result = await run_cli(
            None,
            tmp_path,
            "--auth-addr",
            address,
            "--download-addr",
            address,
            "--timeout",
            "5",
            "register",
            "--email",
            "a@example.com",
            "--username",
            "abc",
            "--password-stdin",
            stdin=TEST_PASSWORD + "\n",
        )
    assert_clean_failure(result, 7, "unavailable")


async def test_password_sources(sqlite_servers: MediadlServers, tmp_path: Path) -> None:
    servers = sqlite_servers
    no_terminal = await run_cli(servers, tmp_path, "login", "--email", "ada@example.com", stdin="")
    assert_clean_failure(no_terminal, 2, "--password-stdin")
    on_argv = await run_cli(
        servers, tmp_path, "register", "--email", "ada@example.com", "--username", "ada", "--password", TEST_PASSWORD
    )
    assert on_argv.code == 0
    assert "warning" in on_argv.stderr and "visible" in on_argv.stderr


async def test_addresses_from_environment(sqlite_servers: MediadlServers, tmp_path: Path) -> None:
    env = {"MEDIADL_AUTH_ADDR": sqlite_servers.auth_addr, "MEDIADL_DOWNLOAD_ADDR": sqlite_servers.download_addr}
    result = await run_cli(
        sqlite_servers,
        tmp_path,
        "--config-dir",
        str(tmp_path / "cfg"),
        "register",
        "--email",
        "env@example.com",
        "--username",
        "envuser",
        "--password-stdin",
        stdin=TEST_PASSWORD + "\n",
        addresses=False,
        env=env,
    )
    assert result.code == 0, result
    assert "registered envuser" in result.stdout
