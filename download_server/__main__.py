"""`python -m download_server` serves until SIGINT/SIGTERM; `python -m download_server migrate` migrates and exits."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from sqlalchemy.exc import OperationalError

from download_server.bootstrap import start_download_server
from download_server.config import DownloadSettings, database_url_from_env
from download_server.migrations import SCRIPT_LOCATION
from mediadl_common.config import ConfigError, Env
from mediadl_common.db import describe_url, run_migrations
from mediadl_common.log import LogSettings, configure_logging
from mediadl_common.server import serve_until_signalled

PROG = "download_server"
EXIT_FAILURE, EXIT_CONFIG = 1, 2
log = logging.getLogger(PROG)


async def serve(settings: DownloadSettings) -> None:
    running = await start_download_server(settings)
    await serve_until_signalled(running, grace=settings.shutdown_grace_seconds)


def migrate(url: str) -> None:
    log.info("migrating %s", describe_url(url))
    run_migrations(url, SCRIPT_LOCATION)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["serve", "migrate"], default="serve")
    parser.add_argument("--env-file", default=".env", help="settings file under the environment (default .env)")
    args = parser.parse_args(argv)
    try:
        env = Env.load(args.env_file)
        configure_logging(LogSettings.from_env(env))
        # Migrating needs the database alone, not the JWT key.
        settings = DownloadSettings.from_env(env) if args.command == "serve" else None
        url = settings.database_url if settings else database_url_from_env(env)
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    # Operator-fixable failures get one line; anything else keeps its traceback (a bug to report).
    try:
        if settings is None:
            migrate(url)
        else:
            log.info("starting with %s", settings)
            asyncio.run(serve(settings))
    except OperationalError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        print(f"{PROG}: cannot use the database {describe_url(url)}: {detail}", file=sys.stderr)
        return EXIT_FAILURE
    except RuntimeError as exc:
        if "bind" not in str(exc):
            raise
        print(f"{PROG}: cannot listen on {settings.grpc_addr if settings else '?'}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
