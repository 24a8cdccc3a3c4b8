"""Every `sh` block of docs/ops.md, in order, run as written with the real grpcurl against real servers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ROOT
from tests.support.net import free_port, wait_serving
from tests.support.origin import Origin

pytestmark = pytest.mark.e2e
GRPCURL = ROOT / ".venv" / "bin" / "grpcurl"


def recipe_script() -> str:
    blocks = re.findall(r"^```sh\n(.*?)^```", (ROOT / "docs" / "ops.md").read_text(), flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 8, "docs/ops.md lost its recipes"
    return "set -euo pipefail\n" + "\n".join(blocks)


def tool_or_skip(path: str | None, name: str) -> None:
    if path is None:
        message = f"{name} is not installed (make test installs grpcurl; jq comes from the OS)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "AUTH_", "DOWNLOAD_"))}
    addresses = {"AUTH": f"127.0.0.1:{free_port()}", "DL": f"127.0.0.1:{free_port()}"}
    env.update(
        JWT_SECRET_KEY="ops-recipes-secret-" + "x" * 40,
        AUTH_GRPC_ADDR=addresses["AUTH"],
        DOWNLOAD_GRPC_ADDR=addresses["DL"],
        AUTH_BCRYPT_ROUNDS="4",
        # The test origin listens on loopback, which production refuses.
        DOWNLOAD_ALLOW_PRIVATE_NETWORKS="true",
        STORAGE_DIR=str(tmp_path / "storage"),
    )
    procs = [
        subprocess.Popen([sys.executable, "-m", name], cwd=tmp_path, env=env, stderr=subprocess.DEVNULL)
        for name in ("auth_server", "download_server")
    ]
    try:
        for address in addresses.values():
            wait_serving(address)
        yield addresses
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)


@pytest.fixture
async def origin(media_fixtures: Path, tmp_path: Path) -> AsyncIterator[Origin]:
    async with Origin.serving(media_fixtures, tmp_path / "origin") as served:
        yield served


async def test_every_recipe_runs_as_written(servers: dict[str, str], origin: Origin, tmp_path: Path) -> None:
    tool_or_skip(str(GRPCURL) if GRPCURL.exists() else shutil.which("grpcurl"), "grpcurl")
    tool_or_skip(shutil.which("jq"), "jq")
    env = {
        **os.environ,
        **servers,
        "MEDIA_URL": origin.url("hls_ts/index.m3u8"),
        "PATH": f"{GRPCURL.parent}{os.pathsep}{os.environ['PATH']}",
    }
    # Run without blocking the loop: the origin serves from this process.
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        recipe_script(),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-4000:]

    # The StartTask recipe streamed the download to its end; the stream's last event says COMPLETED.
    events = [json.loads(line) for line in text.splitlines() if line.startswith('{"status"')]
    assert events and events[-1]["status"] == "TASK_STATUS_COMPLETED", text[-4000:]
    assert "mediadl.download.v1.DownloadService" in text and '"SERVING"' in text
    assert all(origin.completed[f"hls_ts/seg{i:02d}.ts"] == 1 for i in range(6))
    # The ListTaskVideos recipe printed the video record of the finished download.
    assert '"format":"hls"' in text and '"segment_count":6' in text
