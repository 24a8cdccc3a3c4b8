"""The `python -m <server>` entry point both servers share: serve or migrate, with one-line failures."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from sqlalchemy.exc import OperationalError

from mediadl_common.config import ConfigError, Env
from mediadl_common.db import describe_url, run_migrations
from mediadl_common.errors import DomainError
from mediadl_common.log import LogSettings, configure_logging
from mediadl_common.server import RunningServer, StopSignals, serve_until_signalled
from mediadl_common.tracing import configure_tracing, shutdown_tracing

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


class ServerSettings(Protocol):
    @property
    def database_url(self) -> str: ...
    @property
    def grpc_addr(self) -> str: ...
    @property
    def shutdown_grace_seconds(self) -> float: ...


S = TypeVar("S", bound=ServerSettings)


@dataclass(frozen=True)
class ServerProgram(Generic[S]):
    """What differs between the servers' entry points; everything else is run_server_program()."""

    prog: str
    description: str
    load_settings: Callable[[Env], S]
    # Migrating needs the database alone, not the JWT key.
    database_url_from_env: Callable[[Env], str]
    migrations: str | Path
    start: Callable[[S], Awaitable[RunningServer]]
    # Further commands (name -> handler of the parsed args), and the options they need.
    extra_commands: Mapping[str, Callable[[argparse.Namespace], int]] = field(default_factory=dict)
    add_options: Callable[[argparse.ArgumentParser], None] | None = None
    epilog: str | None = None


def run_server_program(program: ServerProgram[S], argv: list[str] | None = None) -> int:
    """Parse argv, then serve (default) or migrate; operator-fixable failures print one line, no traceback."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {program.prog}", description=program.description, epilog=program.epilog
    )
    parser.add_argument("command", nargs="?", choices=["serve", "migrate", *program.extra_commands], default="serve")
    parser.add_argument("--env-file", default=".env", help="settings file under the environment (default .env)")
    if program.add_options is not None:
        program.add_options(parser)
    args = parser.parse_args(argv)
    if args.command in program.extra_commands:
        return program.extra_commands[args.command](args)
    log = logging.getLogger(program.prog)
    try:
        env = Env.load(args.env_file)
        configure_logging(LogSettings.from_env(env))
        configure_tracing(program.prog, env)
        settings = program.load_settings(env) if args.command == "serve" else None
        url = settings.database_url if settings else program.database_url_from_env(env)
    except ConfigError as exc:
        print(f"{program.prog}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    # Anything not caught below keeps its traceback: that is a bug to report, not an operator's mistake.
    try:
        if settings is None:
            log.info("migrating %s", describe_url(url))
            run_migrations(url, program.migrations)
        else:
            log.info("starting with %s", settings)
            asyncio.run(_serve(program, settings))
    except OperationalError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        print(f"{program.prog}: cannot use the database {describe_url(url)}: {detail}", file=sys.stderr)
        return EXIT_FAILURE
    except DomainError as exc:
        # E.g. the first superuser's username belongs to someone else.
        print(f"{program.prog}: cannot start: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    except RuntimeError as exc:
        if "bind" not in str(exc):
            raise
        print(f"{program.prog}: cannot listen on {settings.grpc_addr if settings else '?'}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        pass
    finally:
        shutdown_tracing()  # the spans still buffered go out before the process ends
    return EXIT_OK


async def _serve(program: ServerProgram[S], settings: S) -> None:
    # Caught before starting: start-up (migrations, crash recovery) can take a while.
    signals = StopSignals()
    running = await program.start(settings)
    await serve_until_signalled(running, grace=settings.shutdown_grace_seconds, signals=signals)
