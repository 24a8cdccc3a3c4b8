"""The TLS recipes of docs/ops.md, run as written with the real grpcurl against servers started with TLS
(then with mTLS); plaintext and wrong-CA grpcurl calls are refused."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest

from clients.testing import mediadl_servers
from clients.tls import tls_credentials
from tests.conftest import IN_CI, ROOT
from tests.support.certs import TestCa

GRPCURL = ROOT / ".venv" / "bin" / "grpcurl"


def tls_blocks() -> list[str]:
    section = (ROOT / "docs" / "ops.md").read_text().split("## TLS and mTLS", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```shell\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 2, "docs/ops.md lost its TLS recipes"
    return blocks


def grpcurl() -> str:
    found = str(GRPCURL) if GRPCURL.exists() else shutil.which("grpcurl")
    if found is None:
        if IN_CI:
            pytest.fail("grpcurl is not installed")
        pytest.skip("grpcurl is not installed (make test installs it)")
    return found


async def bash(script: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", "set -euo pipefail\n" + script, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def server_env(ca: TestCa, mutual: bool) -> dict[str, str]:
    env = {"TLS_CA_FILE": str(ca.ca_file)}
    for prefix in ("AUTH", "DOWNLOAD"):
        issued = ca.issue(prefix.lower())
        env |= {f"{prefix}_TLS_CERT_FILE": str(issued.cert_file), f"{prefix}_TLS_KEY_FILE": str(issued.key_file)}
        if mutual:
            env[f"{prefix}_TLS_CLIENT_CA_FILE"] = str(ca.ca_file)
    if mutual:  # the download server presents its own certificate to the auth server
        caller = ca.issue("download-caller", server=False)
        env |= {"TLS_CLIENT_CERT_FILE": str(caller.cert_file), "TLS_CLIENT_KEY_FILE": str(caller.key_file)}
    return env


async def test_grpcurl_with_cacert_reaches_tls_servers_and_others_are_refused(tmp_path: Path) -> None:
    tool, (tls_block, _) = grpcurl(), tls_blocks()
    ca, wrong = TestCa(tmp_path / "ca"), TestCa(tmp_path / "wrong", name="wrong CA")
    async with mediadl_servers(tmp_path / "servers", env=server_env(ca, mutual=False)) as servers:
        env = {"AUTH": servers.auth_addr, "DL": servers.download_addr, "CA": str(ca.ca_file),
               "PATH": f"{Path(tool).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
        code, output = await bash(tls_block, env)
        assert code == 0, output
        assert "mediadl.auth.v1.AuthService" in output and '"SERVING"' in output
        for refused in ('grpcurl -plaintext "$AUTH" list', f'grpcurl -cacert {wrong.ca_file} "$AUTH" list'):
            code, output = await bash(refused, env)
            assert code != 0, output


async def test_grpcurl_with_a_client_certificate_reaches_mtls_servers(tmp_path: Path) -> None:
    tool, (_, mtls_block) = grpcurl(), tls_blocks()
    ca = TestCa(tmp_path / "ca")
    ops = ca.issue("operator", server=False)
    async with mediadl_servers(tmp_path / "servers", env=server_env(ca, mutual=True)) as servers:
        creds = tls_credentials(ca_file=ca.ca_file, cert_file=ops.cert_file, key_file=ops.key_file)
        client = await servers.logged_in_client(credentials=creds)
        token = client.tokens.load()
        assert token is not None
        env = {"AUTH": servers.auth_addr, "DL": servers.download_addr, "CA": str(ca.ca_file),
               "CERT": str(ops.cert_file), "KEY": str(ops.key_file), "TOKEN": token.access_token,
               "PATH": f"{Path(tool).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
        code, output = await bash(mtls_block, env)
        assert code == 0, output
        assert '"SERVING"' in output
        code, output = await bash('grpcurl -cacert "$CA" "$AUTH" grpc.health.v1.Health/Check', env)
        assert code != 0, "a client without a certificate got in"
