"""Under CI=true a skip fails the run (tests/support/no_skips.py), unless its allow-list says why it may skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.support import no_skips

PROBE = """
import pytest
from pathlib import Path
from tests.support.media import decoded_video_frames

pytest.importorskip("{module}")


def test_plays(tmp_path: Path) -> None:
    decoded_video_frames(tmp_path / "none.ts")


@pytest.mark.skipif(True, reason="a condition")
def test_marked() -> None:
    pass
"""


def run(tmp_path: Path, *, ci: bool, module: str = "json", path: str | None = None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE.format(module=module))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "true" if ci else ""}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.no_skips", "-p", "no:cacheprovider", "-q", "-rA",
         "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def path_without_ffprobe(tmp_path: Path) -> str:
    """PATH with only the python that runs pytest: no ffprobe anywhere on it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    return str(bin_dir)


def test_without_ffprobe_a_playback_check_fails_under_ci(tmp_path: Path) -> None:
    path = path_without_ffprobe(tmp_path)
    assert shutil.which("ffprobe", path=path) is None

    result = run(tmp_path, ci=True, path=path)
    assert result.returncode == 1, result.stdout
    assert "FAILED" in result.stdout and "skipped under CI=true: Skipped: ffprobe not installed" in result.stdout
    assert "ERROR" in result.stdout and "skipped under CI=true: Skipped: a condition" in result.stdout
    assert " skipped" not in result.stdout.splitlines()[-1]


def test_outside_ci_the_same_checks_skip_with_their_reason(tmp_path: Path) -> None:
    result = run(tmp_path, ci=False, path=path_without_ffprobe(tmp_path))
    assert result.returncode == 0, result.stdout
    assert "2 skipped" in result.stdout and "ffprobe not installed" in result.stdout


def test_a_module_skipped_at_import_fails_under_ci(tmp_path: Path) -> None:
    result = run(tmp_path, ci=True, module="a_module_that_is_not_installed")
    assert result.returncode != 0 and "skipped under CI=true" in result.stdout, result.stdout


def test_the_allow_list_names_real_tests_and_says_why() -> None:
    for nodeid, why in no_skips.ALLOWED.items():
        path, _, name = nodeid.partition("::")
        assert f"def {name}(" in (ROOT / path).read_text(), nodeid
        assert len(why) > 20, nodeid
