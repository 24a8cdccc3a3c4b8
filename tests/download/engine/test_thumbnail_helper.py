"""The thumbnail helper process: PyAV stays out of the server, one helper serves many thumbnails, and a
helper that died (killed, crashed on a file, gone idle) is replaced at the next request."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from download_server.engine.output import thumbnail
from download_server.engine.output.thumbnail import make_thumbnail


def test_pyav_is_not_imported_by_the_server() -> None:
    code = "import sys, download_server.__main__; print('av' in sys.modules)"
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == "False"


def test_one_helper_serves_thumbnails_and_a_dead_one_is_replaced(media_fixtures: Path, tmp_path: Path) -> None:
    segment = media_fixtures / "hls_ts" / "seg00.ts"
    assert make_thumbnail(segment, tmp_path / "a.jpg")
    helper = thumbnail._HELPER._process
    assert helper is not None
    assert make_thumbnail(segment, tmp_path / "b.jpg")
    assert thumbnail._HELPER._process is helper  # the same process, not one per thumbnail
    helper.kill()
    helper.wait()
    assert make_thumbnail(segment, tmp_path / "c.jpg")  # a new helper
    assert (tmp_path / "c.jpg").read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    assert not make_thumbnail(tmp_path / "missing.ts", tmp_path / "d.jpg")
    assert not (tmp_path / "d.jpg").exists()


def test_an_idle_helper_exits_by_itself() -> None:
    helper = subprocess.Popen(
        [sys.executable, "-m", thumbnail.__name__, "0.2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    started = time.monotonic()
    try:
        assert helper.wait(timeout=20) == 0
    finally:
        helper.kill()
        assert helper.stdin is not None and helper.stdout is not None
        helper.stdin.close()
        helper.stdout.close()
    assert time.monotonic() - started < 20


def test_a_helper_that_dies_on_a_request_is_not_asked_again(tmp_path: Path, monkeypatch: Any) -> None:
    """A file that crashes the decoder (here: a helper that exits 3 on reading any request) costs one helper,
    not two: only a helper that left on its own while idle (exit code 0) is worth a second request."""
    started: list[subprocess.Popen[bytes]] = []
    crashing = [sys.executable, "-c", "import sys; sys.stdin.readline(); sys.exit(3)"]

    def spawn(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = real_popen(crashing, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        started.append(process)
        return process

    real_popen = subprocess.Popen
    helper = thumbnail._Helper()
    monkeypatch.setattr(subprocess, "Popen", spawn)
    assert not helper.ask('{"media": ["x.ts"], "single": true, "target": "x.jpg", "at": 0}')
    assert len(started) == 1
    assert started[0].returncode == 3
