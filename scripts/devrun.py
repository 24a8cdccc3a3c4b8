"""Run both servers and the dashboard in the foreground for `make run`; Ctrl-C (or SIGTERM) stops all gracefully."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

SERVERS = ["auth_server", "download_server", "dashboard"]
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def main() -> int:
    procs = [subprocess.Popen([sys.executable, "-m", name]) for name in SERVERS]
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    # Ctrl-C signals the whole process group, so children may hear it twice (from the terminal and from us);
    # forwarding still matters when only this process is signalled (a supervisor's SIGTERM).
    for sig in STOP_SIGNALS:
        signal.signal(sig, forward)
    exit_code = 0
    while any(p.poll() is None for p in procs):
        for name, proc in zip(SERVERS, procs, strict=True):
            code = proc.poll()
            # A child that finished its shutdown and then met the second copy of the stop signal ends by
            # that signal: during a requested stop that is a clean exit, not a failure.
            asked_to_stop = stopping and code in tuple(-s for s in STOP_SIGNALS)
            if code not in (None, 0) and exit_code == 0 and not asked_to_stop:
                print(f"{name} exited with status {code}: stopping the others", file=sys.stderr)
                exit_code = code
                forward(signal.SIGTERM, None)
        time.sleep(0.2)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
