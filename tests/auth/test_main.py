"""`python -m auth_server` as a process: one-line config errors (exit 2), migrate, serve and stop on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import grpc

from mediadl.auth.v1 import auth_pb2, auth_pb2_grpc
from tests.auth.helpers import PASSWORD, SECRET
from tests.support.processes import clean_env, run_module


def run_main(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_module("auth_server", cwd, *args, **env)


def test_a_missing_secret_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_main(tmp_path)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("auth_server: configuration error: JWT_SECRET_KEY is not set")
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_short_secret_from_the_env_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("JWT_SECRET_KEY=too-short-secret\n")

    result = run_main(tmp_path)

    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "JWT_SECRET_KEY is too short" in result.stderr and "too-short-secret" not in result.stderr


def test_migrate_needs_only_the_database(tmp_path: Path) -> None:
    result = run_main(tmp_path, "migrate")

    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "data" / "auth.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "refresh_tokens", "auth_alembic_version"} <= tables


async def test_serves_until_sigterm_then_exits_cleanly_without_logging_the_secret(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "auth_server",
        cwd=tmp_path,
        env=clean_env(JWT_SECRET_KEY=SECRET, AUTH_GRPC_ADDR="127.0.0.1:0", AUTH_BCRYPT_ROUNDS="4"),
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        port = None
        while port is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), timeout=60)).decode()
            assert line, "auth_server exited before listening:\n" + "".join(lines)
            lines.append(line)
            if match := re.search(r"listening on \S+ \(port (\d+)\)", line):
                port = int(match.group(1))

        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
            request = auth_pb2.RegisterRequest(email="proc@example.com", username="proc", password=PASSWORD)
            assert (await stub.Register(request, timeout=10)).user.email == "proc@example.com"

        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stderr.read(), timeout=60)
        code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    output = "".join(lines) + rest.decode()

    assert code == 0, output
    assert "received SIGTERM" in output and "sqlite data/auth.db" in output
    assert SECRET not in output and PASSWORD not in output


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    url = f"postgresql+psycopg2://auth:db-password-42@127.0.0.1:{port}/auth"

    for args in ((), ("migrate",)):
        result = run_main(tmp_path, *args, JWT_SECRET_KEY=SECRET, AUTH_DATABASE_URL=url)

        assert result.returncode == 1
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"auth_server: cannot use the database postgresql 127.0.0.1:{port}/auth")
        assert "Traceback" not in result.stderr and "db-password-42" not in result.stderr


def test_a_busy_port_is_reported_without_a_traceback_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        result = run_main(tmp_path, JWT_SECRET_KEY=SECRET, AUTH_GRPC_ADDR=address, AUTH_BCRYPT_ROUNDS="4")

    assert result.returncode == 1
    assert f"auth_server: cannot listen on {address}" in result.stderr and "Traceback" not in result.stderr
