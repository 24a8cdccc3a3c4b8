"""scripts/os_tools.sh, which make test runs first: quiet when the tools are there, one clear line when not."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "os_tools.sh"


def run_with(tools: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The script on a PATH holding only bash, id and the named tools (stand-ins that do nothing)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for real in ("bash", "id"):
        found = shutil.which(real)
        assert found is not None
        (bin_dir / real).symlink_to(found)
    for tool in tools:
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    env = {"PATH": str(bin_dir), "MEDIADL_INSTALL_OS_TOOLS": "0", "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_nothing_to_do_when_every_tool_is_there(tmp_path: Path) -> None:
    result = run_with(["ffprobe", "chromium", "jq", "nginx", "curl", "aria2c", "h2load"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_missing_tools_fail_with_one_line_saying_what_to_install(tmp_path: Path) -> None:
    result = run_with(["jq"], tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ffmpeg chromium chromium-driver" in lines[0] and "apt-get install" in lines[0]
    assert "jq" not in lines[0].split("missing:")[1].split("(")[0]
    assert "nginx-light curl aria2 nghttp2-client" in lines[0]  # the benchmarks' origin and baselines


def test_make_test_runs_it_first() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_line = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert test_line.split(":", 1)[1].split()[0] == "os-tools"
    assert "bash scripts/os_tools.sh" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
