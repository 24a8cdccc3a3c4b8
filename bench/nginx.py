"""A throwaway nginx origin for the benchmarks: a directory served on a free loopback port.

    python -m bench.nginx DIR [--limit-rate 20m]     # prints "url <base>", serves until SIGTERM/SIGINT

    with nginx_origin(directory, limit_rate="20m") as base_url:
        ...  # GET f"{base_url}/file.mp4", Range honoured

Why nginx: the aiohttp origin in bench/origin.py is Python and takes CPU from the side it serves, which
hides the gap to a C downloader. nginx serves static files with sendfile and answers Range requests by
itself. The Debian binary is used; when it is missing and we are root with apt-get it is installed
(`nginx-light`), otherwise NginxUnavailable says so and callers fall back to bench/origin.py.

Everything nginx writes (pid, logs, temp paths, the config) lives in a temp dir, nginx runs in the
foreground (`daemon off`) as a subprocess we own, so it works unprivileged and leaves nothing behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
PACKAGE = "nginx-light"
START_TIMEOUT = 10.0


class NginxUnavailable(RuntimeError):
    """nginx is not installed and cannot be installed here (not root, or no apt-get)."""


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return next((path for path in CANDIDATES if os.access(path, os.X_OK)), None)


def nginx_binary(install: bool = True) -> str:
    """The nginx binary's path; installs the Debian package when missing, root and allowed to."""
    found = find_nginx()
    if found is not None:
        return found
    apt = shutil.which("apt-get")
    if not install or os.geteuid() != 0 or apt is None:
        why = "installing is off" if not install else "not root" if os.geteuid() != 0 else "no apt-get"
        raise NginxUnavailable(f"nginx is not installed ({why}); install {PACKAGE} or use bench/origin.py")
    # Non-interactive, no recommends; a Debian postinst may try to start the system nginx: in containers
    # policy-rc.d refuses, elsewhere the system service is the administrator's business, not ours.
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    for args in (["update", "-q"], ["install", "-y", "-q", "--no-install-recommends", PACKAGE]):
        done = subprocess.run([apt, *lock, *args], env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0 and args[0] == "install":
            raise NginxUnavailable(f"apt-get install {PACKAGE} failed: {done.stderr.strip()[-500:]}")
    found = find_nginx()
    if found is None:
        raise NginxUnavailable(f"{PACKAGE} installed but no nginx binary found")
    return found


def free_port() -> int:
    """A port free right now on 127.0.0.1 (nginx binds it a moment later; start() retries on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class NginxOptions:
    root: Path
    limit_rate: str | None = None  # per connection, nginx syntax: "20m" is 20 MiB/s
    workers: int = 1  # the machine is small; one worker with sendfile serves loopback at GB/s
    access_log: bool = True  # one line per request in <tempdir>/access.log (status, Range, bytes sent)


def render_config(options: NginxOptions, prefix: Path, port: int) -> str:
    """The whole nginx.conf: every writable path inside `prefix`, so no root and no /var are needed."""
    root = options.root.resolve()
    user = ""
    if os.geteuid() == 0:
        # As root nginx drops its workers to `nobody`, which cannot read a 0700 temp dir: keep our user.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};"
    access = (
        f'log_format bench \'$status "$request" range="$http_range" sent=$body_bytes_sent\';\n'
        f"    access_log {prefix}/access.log bench;"
        if options.access_log
        else "access_log off;"
    )
    limit = f"limit_rate {options.limit_rate};" if options.limit_rate else ""
    temps = "\n".join(
        f"    {name}_temp_path {prefix}/{name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}
daemon off;
worker_processes {options.workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    {access}
{temps}
    types {{
        video/mp4 mp4; video/mp2t ts; application/vnd.apple.mpegurl m3u8;
        image/jpeg jpg jpeg; image/png png; image/webp webp; text/plain txt;
    }}
    default_type application/octet-stream;
    sendfile on;
    sendfile_max_chunk 2m;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    server_tokens off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ {limit} }}
    }}
}}
"""


class NginxOrigin:
    """One nginx serving `options.root`; `start()`/`stop()` or use it as a context manager."""

    def __init__(self, options: NginxOptions) -> None:
        self.options = options
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def prefix(self) -> Path:
        assert self._tmp is not None, "not started"
        return Path(self._tmp.name)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def start(self) -> NginxOrigin:
        if self._proc is not None:
            return self  # started already (start() then `with`): a second nginx would be left running
        binary = nginx_binary()
        if not self.options.root.is_dir():
            raise FileNotFoundError(f"nothing to serve: {self.options.root} is not a directory")
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-nginx-")
        for attempt in range(5):  # the free port may be taken between free_port() and nginx's bind
            self.port = free_port()
            conf = self.prefix / "nginx.conf"
            conf.write_text(render_config(self.options, self.prefix, self.port))
            command = [binary, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.prefix / "error.log")]
            self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._wait_ready():
                return self
            self._reap()
            if attempt == 4 or "Address already in use" not in self.error_log():
                break
        log = self.error_log()
        self.stop()
        raise RuntimeError(f"nginx did not start: {log.strip()[-1000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
            time.sleep(0.02)
        return False

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> list[str]:
        path = self.prefix / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def cpu_seconds(self) -> float:
        """User + system CPU of the master and its workers so far (Linux /proc; 0 where unreadable)."""
        if self._proc is None:
            return 0.0
        pids = [self._proc.pid, *_children(self._proc.pid)]
        return sum(_cpu_of(pid) for pid in pids)

    def _reap(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            # SIGQUIT would wait for open keep-alive connections; a bench origin stops now.
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def stop(self) -> None:
        self._reap()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> NginxOrigin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(child) for child in text.split()]
    return []


def _cpu_of(pid: int) -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return 0.0


@contextlib.contextmanager
def nginx_origin(
    root: Path, *, limit_rate: str | None = None, workers: int = 1, access_log: bool = True
) -> Iterator[str]:
    """Serve `root` with nginx for the block; yields the base URL (no trailing slash)."""
    with NginxOrigin(NginxOptions(root, limit_rate, workers, access_log)) as origin:
        yield origin.base_url


@contextlib.contextmanager
def http_server_origin(root: Path) -> Iterator[str]:
    """Serve `root` with Python's http.server (a process on loopback) for the block, where nginx is not
    wanted or cannot be had; yields the base URL (no trailing slash)."""
    port = free_port()
    files = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # it binds at once; a second covers a loaded machine's start-up
        yield f"http://127.0.0.1:{port}"
    finally:
        files.terminate()
        files.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nginx", description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--limit-rate", default=None, help='per connection, nginx syntax ("20m")')
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with NginxOrigin(NginxOptions(args.root, args.limit_rate, args.workers)) as origin:
        print(f"url {origin.base_url}", flush=True)
        stop = False

        def on_signal(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        while not stop:
            time.sleep(0.2)


if __name__ == "__main__":
    main()
