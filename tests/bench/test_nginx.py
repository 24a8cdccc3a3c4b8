"""bench/nginx.py: a throwaway nginx serves a directory on loopback, whole files and byte ranges."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.nginx import NginxOptions, NginxOrigin, NginxUnavailable, find_nginx, nginx_origin, render_config

needs_nginx = pytest.mark.skipif(
    find_nginx() is None and os.geteuid() != 0, reason="nginx is not installed and cannot be (not root)"
)


def _nginx_masters() -> list[str]:
    """The command lines of running nginx processes (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "nginx" in line:
                found.append(line)
    return found


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, dict(resp.headers), resp.read()


@needs_nginx
def test_serves_a_file_whole_and_by_range(tmp_path: Path) -> None:
    body = os.urandom(300_000)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "file.mp4").write_bytes(body)
    try:
        origin = NginxOrigin(NginxOptions(tmp_path / "www")).start()
    except NginxUnavailable as exc:
        pytest.skip(str(exc))
    first = origin.pid
    with origin:  # entering a started origin starts no second nginx
        assert origin.start() is origin and origin.pid == first
        status, headers, whole = _get(origin.url("file.mp4"))
        assert (status, whole) == (200, body)
        assert headers["Accept-Ranges"] == "bytes" and headers["Content-Type"] == "video/mp4"
        assert headers["ETag"] and headers["Last-Modified"]

        status, headers, part = _get(origin.url("/file.mp4"), {"Range": "bytes=100000-199999"})
        assert (status, part) == (206, body[100_000:200_000])
        assert headers["Content-Range"] == f"bytes 100000-199999/{len(body)}"

        log = origin.access_log()
        assert any('range="bytes=100000-199999"' in line and line.startswith("206") for line in log)
        assert origin.cpu_seconds() >= 0
        prefix, pid = origin.prefix, origin.pid
    assert not prefix.exists()  # pid, logs, config and temp paths went with it
    assert not Path(f"/proc/{pid}").exists()  # and nginx itself (reaped, so not even a zombie)
    assert not [line for line in _nginx_masters() if str(prefix) in line]


@needs_nginx
def test_context_manager_yields_the_base_url_and_stops(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"hello")
    try:
        with nginx_origin(tmp_path, limit_rate="20m", access_log=False) as base:
            assert base.startswith("http://127.0.0.1:")
            assert _get(f"{base}/a.txt")[2] == b"hello"
            with pytest.raises(urllib.error.HTTPError) as missing:
                _get(f"{base}/nope")
            assert missing.value.code == 404
    except NginxUnavailable as exc:
        pytest.skip(str(exc))
    with pytest.raises(OSError):
        _get(f"{base}/a.txt")


def test_config_keeps_every_writable_path_in_the_prefix(tmp_path: Path) -> None:
    text = render_config(NginxOptions(tmp_path, limit_rate="20m"), Path("/p"), 8123)
    assert "daemon off;" in text and "listen 127.0.0.1:8123;" in text and "limit_rate 20m;" in text
    assert "sendfile on;" in text and "keepalive_timeout" in text
    for line in text.splitlines():
        if any(key in line for key in ("pid ", "error_log", "_temp_path", "access_log ")):
            assert "/p/" in line, line
    assert "limit_rate" not in render_config(NginxOptions(tmp_path), Path("/p"), 1)
