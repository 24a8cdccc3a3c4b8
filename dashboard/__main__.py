"""`python -m dashboard` serves the web dashboard until SIGINT/SIGTERM (default http://127.0.0.1:8080)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from dashboard.app import start_dashboard
from dashboard.config import DashboardSettings
from mediadl_common.config import ConfigError, Env
from mediadl_common.log import configure_logging

PROG = "dashboard"
EXIT_FAILURE, EXIT_CONFIG = 1, 2
log = logging.getLogger(PROG)


async def serve(settings: DashboardSettings) -> None:
    running = await start_dashboard(settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: ending every session's event stream")
    await running.stop()
    log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description=__doc__,
        epilog="Settings: DASHBOARD_ADDR (127.0.0.1:8080); MEDIADL_AUTH_ADDR and MEDIADL_DOWNLOAD_ADDR, else "
        "AUTH_GRPC_ADDR and DOWNLOAD_GRPC_ADDR; DASHBOARD_SESSION_SECRET (32+ bytes; when unset a random key is "
        "made at each start, so a restart signs everyone out); DASHBOARD_COOKIE_SECURE=true behind HTTPS.",
    )
    parser.add_argument("--env-file", default=".env", help="settings file under the environment (default .env)")
    args = parser.parse_args(argv)
    try:
        env = Env.load(args.env_file)
        settings = DashboardSettings.from_env(env)
        configure_logging(settings.log)
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if settings.secret_is_random:
        log.warning("DASHBOARD_SESSION_SECRET is not set: using a random key, so a restart signs everyone out")
    log.info("starting with %s", settings)
    try:
        asyncio.run(serve(settings))
    except OSError as exc:
        # Typically the port is taken: one line, not a traceback.
        print(f"{PROG}: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
