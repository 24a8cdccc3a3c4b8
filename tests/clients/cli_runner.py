"""Run the `mediadl` CLI as a subprocess, as a user would, without blocking the in-process servers' loop."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.testing import MediadlServers

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIADL_")}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(home / "xdg"))
    return env


async def run_cli(
    servers: MediadlServers | None,
    home: Path,
    *args: str,
    stdin: str | None = None,
    addresses: bool = True,
    env: dict[str, str] | None = None,
) -> Result:
    """`python -m clients.cli [--auth-addr A --download-addr D] ARGS`, with HOME and config under `home`."""
    prefix = (
        ["--auth-addr", servers.auth_addr, "--download-addr", servers.download_addr] if servers and addresses else []
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clients.cli",
        *prefix,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**cli_env(home), **(env or {})},
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin is not None else None), 60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def spawn_cli(home: Path, *args: str) -> asyncio.subprocess.Process:
    """A CLI process with piped output, for commands that run until stopped (`--json dashboard`)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clients.cli",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(home),
        cwd=ROOT,
    )
