"""Start both servers and the dashboard as `make run` does (scripts/devrun.py, real processes) and use them over
sockets."""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from mediadl.auth.v1 import auth_pb2, auth_pb2_grpc
from tests.conftest import ROOT
from tests.support.net import free_port, wait_http, wait_serving

pytestmark = pytest.mark.e2e


def listed_services(address: str) -> set[str]:
    with grpc.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        [reply] = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
        return {s.name for s in reply.list_services_response.service}


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, str, str, subprocess.Popen[bytes]]]:
    auth_addr, download_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    dashboard_url = f"http://127.0.0.1:{free_port()}"
    # The dev .env exactly as `make run` writes it, in a fresh working directory.
    subprocess.run([sys.executable, str(ROOT / "scripts" / "write_dev_env.py"), ".env"], cwd=tmp_path, check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "AUTH_", "DOWNLOAD_", "DASHBOARD_"))}
    env.update(AUTH_GRPC_ADDR=auth_addr, DOWNLOAD_GRPC_ADDR=download_addr, AUTH_BCRYPT_ROUNDS="4")
    env.update(DASHBOARD_ADDR=dashboard_url.removeprefix("http://"))
    for command in ("auth_server", "download_server"):
        subprocess.run([sys.executable, "-m", command, "migrate"], cwd=tmp_path, env=env, check=True, timeout=120)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "devrun.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_serving(auth_addr)
        wait_serving(download_addr)
        wait_http(f"{dashboard_url}/healthz")
        yield auth_addr, download_addr, dashboard_url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def dashboard_login(url: str, email: str, password: str) -> dict[str, Any]:
    """Log in on the dashboard as its page does (pre-login token, then POST); the tasks it then lists."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(path: str, body: dict[str, str] | None = None, token: str = "") -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "X-CSRF-Token": token} if data is not None else {}
        with opener.open(urllib.request.Request(url + path, data=data, headers=headers), timeout=10) as reply:
            return dict(json.load(reply))

    token = call("/api/session")["csrf_token"]
    login = call("/api/login", {"email": email, "password": password}, token)
    assert login["user"]["email"] == email
    return call("/api/tasks")


def test_both_servers_serve_health_reflection_and_auth(
    servers: tuple[str, str, str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    auth_addr, download_addr, dashboard_url, proc = servers
    assert {"mediadl.auth.v1.AuthService", "grpc.health.v1.Health"} <= listed_services(auth_addr)
    assert {"mediadl.download.v1.DownloadService", "grpc.health.v1.Health"} <= listed_services(download_addr)
    assert any("reflection" in name for name in listed_services(auth_addr))

    with grpc.insecure_channel(auth_addr) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        stub.Register(
            auth_pb2.RegisterRequest(
                email="E2E@Example.com", username="e2e_user", password="correct horse", full_name="E"
            ),
            timeout=10,
        )
        login = stub.Login(auth_pb2.LoginRequest(email="e2e@example.com", password="correct horse"), timeout=10)
        assert login.token_type == "Bearer" and login.expires_in > 0
        me = stub.GetMe(
            auth_pb2.GetMeRequest(), metadata=(("authorization", f"Bearer {login.access_token}"),), timeout=10
        )
        assert me.user.email == "e2e@example.com" and me.user.username == "e2e_user"

    # The dashboard answers, talks to these servers, and serves its page under a strict CSP.
    assert dashboard_login(dashboard_url, "e2e@example.com", "correct horse") == {
        "tasks": [],
        "next_page_token": "",
        "total_size": 0,
    }
    with urllib.request.urlopen(dashboard_url + "/", timeout=10) as page:
        assert page.status == 200 and "default-src 'self'" in page.headers["Content-Security-Policy"]

    # SQLite files under ./data of the working directory, as the README promises.
    assert (tmp_path / "data" / "auth.db").is_file() and (tmp_path / "data" / "download.db").is_file()

    # Ctrl-C in a terminal signals the whole foreground process group: do the same.
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output.decode(errors="replace")[-2000:]
    text = output.decode(errors="replace")
    secret = next(
        line.split("=", 1)[1]
        for line in (tmp_path / ".env").read_text().splitlines()
        if line.startswith("JWT_SECRET_KEY=")
    )
    assert secret not in text and "correct horse" not in text and login.access_token not in text


def test_dev_env_is_random_private_and_kept(tmp_path: Path) -> None:
    script = str(ROOT / "scripts" / "write_dev_env.py")
    subprocess.run([sys.executable, script, str(tmp_path / "a.env")], check=True)
    subprocess.run([sys.executable, script, str(tmp_path / "b.env")], check=True)
    first = (tmp_path / "a.env").read_text()
    secret = next(line.split("=", 1)[1] for line in first.splitlines() if line.startswith("JWT_SECRET_KEY="))
    assert len(bytes.fromhex(secret)) == 64
    assert first != (tmp_path / "b.env").read_text()
    assert (tmp_path / "a.env").stat().st_mode & 0o777 == 0o600
    subprocess.run([sys.executable, script, str(tmp_path / "a.env")], check=True)
    assert (tmp_path / "a.env").read_text() == first
    token = next(line.split("=", 1)[1] for line in first.splitlines() if line.startswith("AUTH_SERVICE_TOKEN="))
    assert len(token) >= 32


def test_an_older_dev_env_gains_a_service_token_and_keeps_the_rest(tmp_path: Path) -> None:
    old = tmp_path / ".env"
    old.write_text("JWT_SECRET_KEY=" + "ab" * 64 + "\nLOG_LEVEL=DEBUG")  # no newline at the end either
    subprocess.run([sys.executable, str(ROOT / "scripts" / "write_dev_env.py"), str(old)], check=True)
    lines = old.read_text().splitlines()
    assert lines[:2] == ["JWT_SECRET_KEY=" + "ab" * 64, "LOG_LEVEL=DEBUG"]
    assert sum(line.startswith("AUTH_SERVICE_TOKEN=") for line in lines) == 1
