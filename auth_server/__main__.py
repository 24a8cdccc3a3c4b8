"""`python -m auth_server` serves until SIGINT/SIGTERM; `migrate` applies migrations; `keygen`/`jwks` manage keys."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from sqlalchemy.exc import OperationalError

from auth_server.bootstrap import start_auth_server
from auth_server.config import AuthSettings, database_url_from_env
from auth_server.keytool import jwks, new_ed25519_key, write_key
from auth_server.migrations import SCRIPT_LOCATION
from mediadl_common.config import ConfigError, Env, JwtSettings
from mediadl_common.db import describe_url, run_migrations
from mediadl_common.errors import DomainError
from mediadl_common.log import LogSettings, configure_logging
from mediadl_common.server import serve_until_signalled

PROG = "auth_server"
EXIT_FAILURE, EXIT_CONFIG = 1, 2
log = logging.getLogger(PROG)


async def serve(settings: AuthSettings) -> None:
    running = await start_auth_server(settings)
    await serve_until_signalled(running, grace=settings.shutdown_grace_seconds)


def migrate(url: str) -> None:
    log.info("migrating %s", describe_url(url))
    run_migrations(url, SCRIPT_LOCATION)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description=__doc__,
        epilog="keygen: new Ed25519 signing key to --out (mode 0600; --append adds it to an existing file, where it "
        "becomes the signing key) or to stdout. jwks: print the public keys of JWT_PRIVATE_KEY_FILE as a JWKS for "
        "download servers' JWT_PUBLIC_KEYS_FILE. See docs/ops.md for rotation step by step.",
    )
    parser.add_argument("command", nargs="?", choices=["serve", "migrate", "keygen", "jwks"], default="serve")
    parser.add_argument("--env-file", default=".env", help="settings file under the environment (default .env)")
    parser.add_argument("--out", help="keygen: the private key file to write")
    parser.add_argument("--append", action="store_true", help="keygen: add to an existing key file")
    args = parser.parse_args(argv)
    if args.command in ("keygen", "jwks"):
        return key_command(args.command, args.out, args.append, args.env_file)
    try:
        env = Env.load(args.env_file)
        configure_logging(LogSettings.from_env(env))
        # Migrating needs the database alone, not the JWT key.
        settings = AuthSettings.from_env(env) if args.command == "serve" else None
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
    except DomainError as exc:
        # E.g. the first superuser's username belongs to someone else.
        print(f"{PROG}: cannot start: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    except RuntimeError as exc:
        if "bind" not in str(exc):
            raise
        print(f"{PROG}: cannot listen on {settings.grpc_addr if settings else '?'}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        pass
    return 0


def key_command(command: str, out: str | None, append: bool, env_file: str) -> int:
    try:
        if command == "keygen":
            pem, kid = new_ed25519_key()
            if out is None:
                sys.stdout.write(pem.decode())
            else:
                write_key(pem, out, append=append)
            print(f"{PROG}: new Ed25519 key, kid {kid}", file=sys.stderr)
            return 0
        jwt = JwtSettings.from_env(Env.load(env_file))
        if not jwt.asymmetric or jwt.private_key_file is None:
            raise ConfigError("jwks needs JWT_ALGORITHM=EdDSA or RS256 and JWT_PRIVATE_KEY_FILE")
        print(jwks(jwt.private_key_file, jwt.algorithm))
        return 0
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
