"""`mediadl admin users list|deactivate|activate|promote|demote` (superusers only)."""

from __future__ import annotations

import argparse
import uuid

from clients.cli import exit_codes
from clients.cli.context import CliError, Context
from clients.cli.output import human_time, print_json, table
from clients.models import Page, User

USER_HEADERS = ["ID", "EMAIL", "USERNAME", "ACTIVE", "SUPERUSER", "CREATED"]


def _rows(users: list[User]) -> list[list[str]]:
    return [
        [
            u.id,
            u.email,
            u.username,
            "yes" if u.is_active else "no",
            "yes" if u.is_superuser else "no",
            human_time(u.create_time),
        ]
        for u in users
    ]


async def users_list(ctx: Context, args: argparse.Namespace) -> int:
    page: Page[User]
    if args.all:
        items = [u async for u in ctx.api.iter_users(query=args.query)]
        page = Page(items=tuple(items), next_page_token="", total_size=len(items))
    else:
        page = await ctx.api.list_users(query=args.query, page_size=args.page_size, page_token=args.page_token)
    if ctx.json:
        print_json(
            {"users": list(page.items), "next_page_token": page.next_page_token, "total_size": page.total_size},
            ctx.stdout,
        )
        return exit_codes.OK
    table(_rows(list(page.items)), USER_HEADERS, ctx.stdout)
    more = f"; next page: --page-token {page.next_page_token}" if page.next_page_token else ""
    ctx.stderr.write(f"{len(page.items)} of {page.total_size} users{more}\n")
    return exit_codes.OK


async def resolve_user_id(ctx: Context, reference: str) -> str:
    """A user id as given, or the id of the one user whose email or username is `reference` (any case)."""
    try:
        return str(uuid.UUID(reference))
    except ValueError:
        pass
    wanted = reference.lower()
    matches = [u async for u in ctx.api.iter_users(query=reference) if wanted in (u.email.lower(), u.username.lower())]
    if not matches:
        raise CliError(f"no user with id, email or username {reference!r}", exit_codes.NOT_FOUND)
    return matches[0].id


async def _update(
    ctx: Context, reference: str, verb: str, *, is_active: bool | None = None, is_superuser: bool | None = None
) -> int:
    user_id = await resolve_user_id(ctx, reference)
    user = await ctx.api.update_user(user_id, is_active=is_active, is_superuser=is_superuser)
    ctx.emit(user, lambda: ctx.say(f"{verb} {user.username} <{user.email}>"))
    return exit_codes.OK


async def users_deactivate(ctx: Context, args: argparse.Namespace) -> int:
    return await _update(ctx, args.user, "deactivated (its tokens stop working within seconds)", is_active=False)


async def users_activate(ctx: Context, args: argparse.Namespace) -> int:
    return await _update(ctx, args.user, "activated", is_active=True)


async def users_promote(ctx: Context, args: argparse.Namespace) -> int:
    return await _update(ctx, args.user, "promoted to superuser", is_superuser=True)


async def users_demote(ctx: Context, args: argparse.Namespace) -> int:
    return await _update(ctx, args.user, "demoted from superuser", is_superuser=False)
