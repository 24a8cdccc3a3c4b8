"""`python -m download_server` as a process: one-line config errors (exit 2), migrate, serve and stop on SIGTERM."""

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

from auth_server.adapters.tokens import JwtIssuer
from mediadl.download.v1 import download_pb2 as pb
from mediadl.download.v1 import download_pb2_grpc
from mediadl_common.config import JwtSettings
from tests.download.api import SECRET
from tests.support.processes import clean_env, run_module
from tests.support.s3 import S3Server


def run_main(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_module("download_server", cwd, *args, **env)


def test_config_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    for env, mention in [
        ({}, "JWT_SECRET_KEY is not set"),
        ({"JWT_SECRET_KEY": "too-short-secret"}, "JWT_SECRET_KEY is too short"),
        ({"JWT_SECRET_KEY": SECRET, "DOWNLOAD_ALLOW_PRIVATE_NETWORKS": "perhaps"}, "DOWNLOAD_ALLOW_PRIVATE_NETWORKS"),
    ]:
        result = run_main(tmp_path, **env)
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines() == [result.stderr.strip()]
        assert result.stderr.startswith(f"download_server: configuration error: {mention}"), result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert "too-short-secret" not in result.stderr and SECRET not in result.stderr


def test_migrate_needs_only_the_database(tmp_path: Path) -> None:
    result = run_main(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "data" / "download.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"tasks", "segments", "failures", "videos", "download_alembic_version"} <= tables
    again = run_main(tmp_path, "migrate")  # idempotent
    assert again.returncode == 0, again.stderr


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    url = f"postgresql+psycopg2://dl:db-password-42@127.0.0.1:{port}/dl"
    for args in ((), ("migrate",)):
        result = run_main(tmp_path, *args, JWT_SECRET_KEY=SECRET, DOWNLOAD_DATABASE_URL=url)
        assert result.returncode == 1, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"download_server: cannot use the database postgresql 127.0.0.1:{port}/dl")
        assert "Traceback" not in result.stderr and "db-password-42" not in result.stderr


async def test_serves_until_sigterm_then_exits_cleanly_without_logging_the_secret(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "download_server",
        cwd=tmp_path,
        env=clean_env(JWT_SECRET_KEY=SECRET, DOWNLOAD_GRPC_ADDR="127.0.0.1:0"),
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        port = None
        while port is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), timeout=60)).decode()
            assert line, "download_server exited before listening:\n" + "".join(lines)
            lines.append(line)
            if match := re.search(r"listening on \S+ \(port (\d+)\)", line):
                port = int(match.group(1))

        token, _ = JwtIssuer(JwtSettings(secret_key=SECRET)).issue(sub="proc-user", type="access", ttl_seconds=60)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = download_pb2_grpc.DownloadServiceStub(channel)  # type: ignore[no-untyped-call]
            listed = await stub.ListTasks(
                pb.ListTasksRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=10
            )
            assert listed.total_size == 0

        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stderr.read(), timeout=60)
        code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    output = "".join(lines) + rest.decode()
    assert code == 0, output
    assert "received SIGTERM" in output and "sqlite data/download.db" in output
    assert SECRET not in output and token not in output


def test_a_bucket_that_cannot_be_used_stops_the_start_in_one_line_without_its_secret(
    tmp_path: Path, s3_server: S3Server
) -> None:
    location = s3_server.location()
    env = {**s3_server.env(location), "STORAGE_URL": "s3://no-such-bucket/media"}
    result = run_main(tmp_path, JWT_SECRET_KEY=SECRET, **env)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("download_server: cannot start: the media store s3://no-such-bucket/media"), last
    assert "NoSuchBucket" in last and "Traceback" not in result.stderr
    assert env["AWS_SECRET_ACCESS_KEY"] not in result.stderr + result.stdout
