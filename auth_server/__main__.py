"""`python -m auth_server` serves until SIGINT/SIGTERM; `migrate` applies migrations; `keygen`/`jwks` manage keys."""

from __future__ import annotations

import argparse
import sys

from auth_server.bootstrap import start_auth_server
from auth_server.config import AuthSettings, database_url_from_env
from auth_server.keytool import jwks, new_ed25519_key, write_key
from auth_server.migrations import SCRIPT_LOCATION
from mediadl_common.config import ConfigError, Env, JwtSettings
from mediadl_common.entrypoint import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, ServerProgram, run_server_program

PROG = "auth_server"


def keygen(args: argparse.Namespace) -> int:
    """New Ed25519 signing key to --out (0600; --append makes it the signing key) or stdout."""
    pem, kid = new_ed25519_key()
    try:
        if args.out is None:
            sys.stdout.write(pem.decode())
        else:
            write_key(pem, args.out, append=args.append)
    except OSError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"{PROG}: new Ed25519 key, kid {kid}", file=sys.stderr)
    return EXIT_OK


def print_jwks(args: argparse.Namespace) -> int:
    """The public keys of JWT_PRIVATE_KEY_FILE as a JWKS, for download servers' JWT_PUBLIC_KEYS_FILE."""
    try:
        jwt = JwtSettings.from_env(Env.load(args.env_file))
        if not jwt.asymmetric or jwt.private_key_file is None:
            raise ConfigError("jwks needs JWT_ALGORITHM=EdDSA or RS256 and JWT_PRIVATE_KEY_FILE")
        print(jwks(jwt.private_key_file, jwt.algorithm))
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def add_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", help="keygen: the private key file to write")
    parser.add_argument("--append", action="store_true", help="keygen: add to an existing key file")


PROGRAM = ServerProgram(
    prog=PROG,
    description=__doc__ or "",
    load_settings=AuthSettings.from_env,
    database_url_from_env=database_url_from_env,
    migrations=SCRIPT_LOCATION,
    start=start_auth_server,
    extra_commands={"keygen": keygen, "jwks": print_jwks},
    add_options=add_key_options,
    epilog="keygen: new Ed25519 signing key to --out (mode 0600; --append adds it to an existing file, where it "
    "becomes the signing key) or to stdout. jwks: print the public keys of JWT_PRIVATE_KEY_FILE as a JWKS for "
    "download servers' JWT_PUBLIC_KEYS_FILE. See docs/keys.md for rotation step by step.",
)


def main(argv: list[str] | None = None) -> int:
    return run_server_program(PROGRAM, argv)


if __name__ == "__main__":
    sys.exit(main())
