"""What every CLI command gets: the connected client, the output mode, and helpers shared by commands."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from clients.aio import AsyncClient
from clients.cli import exit_codes
from clients.cli.output import print_json

DEFAULT_AUTH_ADDR = "127.0.0.1:50051"
DEFAULT_DOWNLOAD_ADDR = "127.0.0.1:50052"


class CliError(Exception):
    """A problem the CLI itself found (bad reference, no password source): a message and an exit code."""

    def __init__(self, message: str, exit_code: int = exit_codes.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def default_config_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mediadl"


@dataclass
class Context:
    """Per-invocation state; `client` is set once the channels are open."""

    args: argparse.Namespace
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    client: AsyncClient | None = None

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    @property
    def config_dir(self) -> Path:
        return Path(self.args.config_dir) if self.args.config_dir else default_config_dir()

    @property
    def tokens_path(self) -> Path:
        return self.config_dir / "tokens.json"

    @property
    def api(self) -> AsyncClient:
        assert self.client is not None, "commands run after connect()"
        return self.client

    def emit(self, value: Any, human: Callable[[], None]) -> None:
        """Print `value` as JSON with --json, else call `human` to print it for people."""
        if self.json:
            print_json(value, self.stdout)
        else:
            human()
            self.stdout.flush()

    def say(self, text: str) -> None:
        self.stdout.write(text + "\n")

    def warn(self, text: str) -> None:
        self.stderr.write(f"mediadl: warning: {text}\n")
        self.stderr.flush()

    def read_password(self, *, confirm: bool) -> str:
        """From --password-stdin, a --password argument (with a warning), or a terminal prompt."""
        if getattr(self.args, "password_stdin", False):
            line = self.stdin.readline().rstrip("\r\n")
            if not line:
                raise CliError("--password-stdin: no password on standard input", exit_codes.USAGE)
            return line
        given = getattr(self.args, "password", None)
        if given is not None:
            self.warn(
                "a password on the command line is visible to other users and kept in shell history; "
                "prefer --password-stdin or the prompt"
            )
            return str(given)
        if not self.stdin.isatty():
            raise CliError("no terminal to ask for the password: pipe it with --password-stdin", exit_codes.USAGE)
        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Repeat password: ") != password:
            raise CliError("the passwords do not match", exit_codes.USAGE)
        return password

    def prompt(self, label: str) -> str:
        if not self.stdin.isatty():
            raise CliError(f"{label.lower()} missing: pass it as an option", exit_codes.USAGE)
        self.stderr.write(f"{label}: ")
        self.stderr.flush()
        return self.stdin.readline().strip()


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def resolve_task_id(ctx: Context, reference: str) -> str:
    """A full task id as given, or the one task whose id starts with `reference` (the short ids tables show)."""
    if is_uuid(reference):
        return reference
    prefix = reference.lower()
    if len(prefix) < 4 or any(ch not in "0123456789abcdef-" for ch in prefix):
        raise CliError(
            f"{reference!r} is not a task id (give the id or at least 4 of its first characters)",
            exit_codes.INVALID_ARGUMENT,
        )
    matches = [task.id async for task in ctx.api.iter_tasks() if task.id.startswith(prefix)]
    if not matches:
        raise CliError(f"no task of yours has an id starting with {reference!r}", exit_codes.NOT_FOUND)
    if len(matches) > 1:
        raise CliError(f"{reference!r} matches {len(matches)} tasks: give more characters", exit_codes.INVALID_ARGUMENT)
    return matches[0]
