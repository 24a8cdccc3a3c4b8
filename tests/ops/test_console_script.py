"""The project installs the `mediadl` command the README uses, and it answers --help."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import ROOT


def test_mediadl_command_is_declared_and_installed() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["mediadl"] == "clients.cli:main"
    command = Path(sys.executable).parent / "mediadl"
    assert command.exists(), "run `make install` (pip install -e .) to install the console script"
    result = subprocess.run([str(command), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage: mediadl" in result.stdout
    assert "dashboard" in result.stdout and "failures" in result.stdout
