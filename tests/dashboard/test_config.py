"""Dashboard settings, cookie signing, and `python -m dashboard` as a process (config errors, serve, SIGTERM)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from dashboard.config import DashboardSettings
from dashboard.sessions import CookieSigner, refresh_token_expiry
from mediadl_common.config import ConfigError, Env
from tests.conftest import ROOT
from tests.support.net import free_port

SECRET = "s" * 40


def test_defaults_and_the_servers_own_variables() -> None:
    settings = DashboardSettings.from_env(Env({}))
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert (settings.auth_addr, settings.download_addr) == ("127.0.0.1:50051", "127.0.0.1:50052")
    assert settings.secret_is_random and len(settings.session_secret) == 32
    assert settings.cookie_secure is False
    # A second start makes another key: that is what signs everyone out on restart.
    assert DashboardSettings.from_env(Env({})).session_secret != settings.session_secret

    servers_side = DashboardSettings.from_env(
        Env({"AUTH_GRPC_ADDR": "0.0.0.0:6001", "DOWNLOAD_GRPC_ADDR": "[::]:6002"})
    )
    assert (servers_side.auth_addr, servers_side.download_addr) == ("127.0.0.1:6001", "[::1]:6002")
    own = DashboardSettings.from_env(
        Env(
            {"AUTH_GRPC_ADDR": "127.0.0.1:6001", "MEDIADL_AUTH_ADDR": "auth.internal:7001", "DASHBOARD_ADDR": "[::1]:9"}
        )
    )
    assert own.auth_addr == "auth.internal:7001" and (own.host, own.port) == ("::1", 9)

    fixed = DashboardSettings.from_env(Env({"DASHBOARD_SESSION_SECRET": SECRET, "DASHBOARD_COOKIE_SECURE": "true"}))
    assert fixed.session_secret == SECRET.encode() and not fixed.secret_is_random and fixed.cookie_secure
    assert SECRET not in repr(fixed)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DASHBOARD_ADDR": "8080"}, "DASHBOARD_ADDR must look like HOST:PORT"),
        ({"DASHBOARD_ADDR": "localhost:99999"}, "DASHBOARD_ADDR must look like HOST:PORT"),
        ({"DASHBOARD_SESSION_SECRET": "short"}, "DASHBOARD_SESSION_SECRET is too short"),
        ({"MEDIADL_DOWNLOAD_ADDR": "127.0.0.1:0"}, "MEDIADL_DOWNLOAD_ADDR names port 0"),
        ({"AUTH_GRPC_ADDR": "nohost"}, "AUTH_GRPC_ADDR must look like HOST:PORT"),
        ({"DASHBOARD_COOKIE_SECURE": "maybe"}, "DASHBOARD_COOKIE_SECURE must be true or false"),
    ],
)
def test_bad_settings_are_one_line_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        DashboardSettings.from_env(Env(env))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_signed_values_resist_tampering_and_other_keys() -> None:
    signer = CookieSigner(b"k" * 32)
    signed = signer.sign("session-id")
    assert signer.unsign(signed) == "session-id"
    value, _, mac = signed.rpartition(".")
    tampered = [f"other-id.{mac}", f"{value}.{mac[:-1]}", value, "", ".", f"{value}.{mac}x"]
    assert [signer.unsign(t) for t in tampered] == [None] * len(tampered)
    assert CookieSigner(b"o" * 32).unsign(signed) is None
    assert signer.unsign(signed, purpose="login") is None  # a session cookie is no login cookie
    assert signer.token("login-csrf", "n1") != signer.token("login-csrf", "n2")


def test_refresh_expiry_reads_exp_and_treats_garbage_as_expired() -> None:
    from auth_server.adapters.tokens import JwtIssuer
    from mediadl_common.config import JwtSettings

    token, claims = JwtIssuer(JwtSettings(secret_key=SECRET)).issue(sub="u1", type="refresh", ttl_seconds=600)
    assert refresh_token_expiry(token) == claims.exp
    assert refresh_token_expiry("not.a.jwt") == 0.0


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DASHBOARD_", "MEDIADL_", "AUTH_", "DOWNLOAD_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "dashboard", *args],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_main_refuses_bad_settings_with_one_line(tmp_path: Path) -> None:
    proc = _run([], {"DASHBOARD_SESSION_SECRET": "short"}, tmp_path)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert output.strip().splitlines() == [
        "dashboard: configuration error: DASHBOARD_SESSION_SECRET is too short: it needs at least 32 bytes"
    ]


def test_main_serves_until_sigterm_and_reports_a_busy_port(tmp_path: Path) -> None:
    port = free_port()
    env = {"DASHBOARD_ADDR": f"127.0.0.1:{port}", "DASHBOARD_SESSION_SECRET": SECRET}
    proc = _run([], env, tmp_path)
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if "dashboard listening on" in line:
                break
        assert re.search(rf"listening on 127\.0\.0\.1:{port}", lines[-1]), lines
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            assert resp.status == 200 and resp.read() == b"ok\n"

        second = _run([], env, tmp_path)
        output, _ = second.communicate(timeout=60)
        assert second.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in output
        assert "Traceback" not in output

        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, rest
        assert SECRET not in "".join(lines) + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
