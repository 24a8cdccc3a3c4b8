"""Every `sh` block of docs/ops.md, in order, run as written with the real grpcurl against real servers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ROOT
from tests.download.engine.flv_origin import make_flv
from tests.support.origin import Origin
from tests.support.processes import server_processes

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
    with server_processes(tmp_path) as running:
        yield {"AUTH": running.auth_addr, "DL": running.download_addr}


@pytest.fixture
async def origin(media_fixtures: Path, tmp_path: Path) -> AsyncIterator[Origin]:
    async with Origin.serving(media_fixtures, tmp_path / "origin") as served:
        yield served


async def test_every_recipe_runs_as_written(servers: dict[str, str], origin: Origin, tmp_path: Path) -> None:
    tool_or_skip(str(GRPCURL) if GRPCURL.exists() else shutil.which("grpcurl"), "grpcurl")
    tool_or_skip(shutil.which("jq"), "jq")
    flv = await asyncio.to_thread(lambda: make_flv(tmp_path / "room.flv", 2).read_bytes())
    origin.write("flv/room.flv", flv)
    env = {
        **os.environ,
        **servers,
        "MEDIA_URL": origin.url("hls_ts/index.m3u8"),
        "LIVE_URL": origin.url("hls_fmp4/index.m3u8"),
        "FLV_URL": origin.url("flv/room.flv"),
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
    # The live-room recipe fetched its MP4 and thumbnail back through ReadVideo.
    assert (tmp_path / "recording.mp4").read_bytes()[4:8] == b"ftyp"
    assert (tmp_path / "thumbnail.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    # The HTTP-FLV recipe recorded the .flv and its MP4 (the video record points at the MP4).
    assert '"format":"mp4","file_path":"flv/room-9_' in text
