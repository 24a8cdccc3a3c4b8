"""The `mediadl` command line: `main()` parses, connects, runs one command and turns errors into exit codes."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence

import grpc

from clients.aio import connect
from clients.cli import exit_codes
from clients.cli.context import CliError, Context
from clients.cli.output import print_json
from clients.cli.parser import build_parser
from clients.errors import MediadlError
from clients.tls import TlsFileError, tls_credentials
from clients.tokens import FileTokenStore, TokenStoreError

Handler = Callable[[Context, argparse.Namespace], Awaitable[int]]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mediadl` console script; returns the exit code (see `mediadl --help`)."""
    args = build_parser().parse_args(argv)
    ctx = Context(args)
    try:
        return asyncio.run(_run(ctx))
    except KeyboardInterrupt:
        ctx.stderr.write("\nmediadl: interrupted\n")
        return exit_codes.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`mediadl task list | head`): not an error worth a message.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exit_codes.ERROR


async def _run(ctx: Context) -> int:
    handler: Handler = ctx.args.handler
    try:
        store = FileTokenStore(ctx.tokens_path)
        async with await connect(
            ctx.args.auth_addr,
            ctx.args.download_addr,
            tokens=store,
            timeout=ctx.args.timeout,
            credentials=_credentials(ctx.args),
        ) as client:
            ctx.client = client
            return await handler(ctx, ctx.args)
    except MediadlError as error:
        return _fail(ctx, exit_codes.message_for(error), exit_codes.exit_code_for(error), error)
    except CliError as error:
        return _fail(ctx, error.message, error.exit_code)
    except (TokenStoreError, TlsFileError) as error:
        return _fail(ctx, str(error), exit_codes.ERROR)
    except Exception as error:  # the CLI's promise: a one-line message, never a traceback
        if os.environ.get("MEDIADL_DEBUG"):
            raise
        return _fail(
            ctx, f"unexpected {type(error).__name__}: {error} (MEDIADL_DEBUG=1 shows details)", exit_codes.ERROR
        )


def _credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    if not (args.tls or args.tls_ca or args.tls_cert or args.tls_key):
        return None
    return tls_credentials(ca_file=args.tls_ca, cert_file=args.tls_cert, key_file=args.tls_key)


def _fail(ctx: Context, message: str, code: int, error: MediadlError | None = None) -> int:
    if ctx.json:
        body: dict[str, object] = {"message": message, "exit_code": code}
        if error is not None:
            body.update(code=error.code, reason=error.reason, server_message=error.message)
            violations = getattr(error, "field_violations", ())
            if violations:
                body["field_violations"] = [{"field": v.field, "description": v.description} for v in violations]
        print_json({"error": body}, ctx.stderr, compact=True)
    else:
        ctx.stderr.write(f"mediadl: {message}\n")
        ctx.stderr.flush()
    return code
