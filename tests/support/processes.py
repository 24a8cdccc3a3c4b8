"""Both servers as real processes (`python -m ...`), as `make run` starts them, with their logs kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT
from tests.support.net import free_port, wait_serving

SECRET = "process-test-secret-" + "s3cr3t" * 8
# Settings a test's own environment must not leak into a server it starts.
MEDIADL_PREFIXES = ("JWT_", "AUTH_", "DOWNLOAD_", "STORAGE_", "LOG_")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any mediadl setting, plus `extra`; imports resolve to ROOT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(MEDIADL_PREFIXES)}
    env["PYTHONPATH"] = str(ROOT)
    return {**env, **extra}


def run_module(module: str, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m module args` in `cwd` (a fresh directory: no .env is read but one a test writes)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=60
    )


@dataclass
class ServerProcesses:
    auth_addr: str
    download_addr: str
    logs: dict[str, Path]

    def log_text(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.logs.values())


@contextmanager
def server_processes(workdir: Path, **extra_env: str) -> Iterator[ServerProcesses]:
    """Start auth and download servers on free ports (SQLite and storage under `workdir`); SIGTERM at exit."""
    auth_addr, download_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = clean_env(
        JWT_SECRET_KEY=SECRET,
        AUTH_GRPC_ADDR=auth_addr,
        DOWNLOAD_GRPC_ADDR=download_addr,
        AUTH_BCRYPT_ROUNDS="4",
        # Test origins listen on loopback, which production refuses.
        DOWNLOAD_ALLOW_PRIVATE_NETWORKS="true",
        STORAGE_DIR=str(workdir / "storage"),
        **extra_env,
    )
    logs = {name: workdir / f"{name}.log" for name in ("auth_server", "download_server")}
    procs = []
    for name, path in logs.items():
        with path.open("wb") as log_file:
            procs.append(
                subprocess.Popen([sys.executable, "-m", name], cwd=workdir, env=env, stdout=log_file, stderr=log_file)
            )
    try:
        wait_serving(auth_addr)
        wait_serving(download_addr)
        yield ServerProcesses(auth_addr, download_addr, logs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
