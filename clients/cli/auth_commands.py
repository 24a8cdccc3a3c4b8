"""`mediadl register | login | logout | whoami`."""

from __future__ import annotations

import argparse

from clients.cli import exit_codes
from clients.cli.context import CliError, Context
from clients.cli.output import details, human_time
from clients.errors import AuthenticationError
from clients.models import User


def _show_user(ctx: Context, user: User) -> None:
    details(
        [
            ("id", user.id),
            ("email", user.email),
            ("username", user.username),
            ("full name", user.full_name or "-"),
            ("superuser", "yes" if user.is_superuser else "no"),
            ("created", human_time(user.create_time)),
        ],
        ctx.stdout,
    )


async def register(ctx: Context, args: argparse.Namespace) -> int:
    password = ctx.read_password(confirm=True)
    user = await ctx.api.register(
        email=args.email, username=args.username, password=password, full_name=args.full_name or ""
    )
    ctx.emit(user, lambda: ctx.say(f"registered {user.username} <{user.email}>: log in with `mediadl login`"))
    return exit_codes.OK


async def login(ctx: Context, args: argparse.Namespace) -> int:
    email = args.email or ctx.prompt("Email")
    password = ctx.read_password(confirm=False)
    try:
        user = await ctx.api.login(email, password)
    except AuthenticationError as exc:
        # Not "session expired, log in again": this *is* the login.
        raise CliError(f"login failed: {exc.message}", exit_codes.AUTH) from None
    ctx.emit(user, lambda: ctx.say(f"logged in as {user.username} <{user.email}> (tokens in {ctx.tokens_path})"))
    return exit_codes.OK


async def logout(ctx: Context, args: argparse.Namespace) -> int:
    was_logged_in = ctx.api.is_logged_in
    await ctx.api.logout()
    ctx.emit(
        {"logged_out": was_logged_in},
        lambda: ctx.say("logged out" if was_logged_in else "not logged in: nothing to do"),
    )
    return exit_codes.OK


async def whoami(ctx: Context, args: argparse.Namespace) -> int:
    user = await ctx.api.whoami()
    ctx.emit(user, lambda: _show_user(ctx, user))
    return exit_codes.OK
