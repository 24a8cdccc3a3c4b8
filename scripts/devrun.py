"""Run both servers and the dashboard in the foreground for `make run`; Ctrl-C (or SIGTERM) stops all gracefully."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

SERVERS = ["auth_server", "download_server", "dashboard"]


def main() -> int:
    procs = [subprocess.Popen([sys.executable, "-m", name]) for name in SERVERS]

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    # Ctrl-C reaches the whole process group; forwarding keeps SIGTERM from a supervisor working too.
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    exit_code = 0
    while any(p.poll() is None for p in procs):
        for name, proc in zip(SERVERS, procs, strict=True):
            code = proc.poll()
            if code not in (None, 0) and exit_code == 0:
                print(f"{name} exited with status {code}: stopping the others", file=sys.stderr)
                exit_code = code
                forward(signal.SIGTERM, None)
        time.sleep(0.2)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
