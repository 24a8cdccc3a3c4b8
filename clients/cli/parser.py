"""The `mediadl` command line: every command, its options and help text, built with argparse."""

from __future__ import annotations

import argparse
import os
from typing import Any

from clients.cli import admin_commands, auth_commands, dashboard, record_commands, task_commands, video_commands
from clients.cli.context import DEFAULT_AUTH_ADDR, DEFAULT_DOWNLOAD_ADDR
from clients.cli.exit_codes import EPILOG
from clients.models import FailureStatus, TaskStatus

TASK_STATUSES = [s.value for s in TaskStatus if s is not TaskStatus.UNSPECIFIED]
FAILURE_STATUSES = [s.value for s in FailureStatus if s is not FailureStatus.UNSPECIFIED]
ORDERS = ["create_time desc", "create_time", "update_time desc", "update_time"]

DESCRIPTION = """\
Download media through the mediadl servers: register and log in, create tasks, start them and watch
their progress, follow every task on a live dashboard, retry what failed.

quick start:
  mediadl register --email ada@example.com --username ada
  mediadl login --email ada@example.com
  mediadl task create --url https://cdn.example.com/live/index.m3u8 --liveroom-id room1 --start
  mediadl dashboard
"""


def _status(value: str) -> str:
    upper = value.upper()
    if upper not in TASK_STATUSES:
        raise argparse.ArgumentTypeError(f"unknown status {value!r} (choose from {', '.join(TASK_STATUSES)})")
    return upper


def _failure_status(value: str) -> str:
    upper = value.upper()
    if upper not in FAILURE_STATUSES:
        raise argparse.ArgumentTypeError(f"unknown status {value!r} (choose from {', '.join(FAILURE_STATUSES)})")
    return upper


def _page_size(value: str) -> int:
    size = int(value)
    if not 1 <= size <= 100:
        raise argparse.ArgumentTypeError("page size must be between 1 and 100")
    return size


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--page-size", type=_page_size, default=20, help="items per page (1-100, default 20)")
    parser.add_argument("--page-token", default="", help="continue from a previous page")
    parser.add_argument("--all", action="store_true", help="fetch every page")


def _password_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    source.add_argument(
        "--password", help="the password (visible to other users: prefer the prompt or --password-stdin)"
    )


def _task_ref(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", metavar="TASK", help="task id, or its first characters as `task list` shows them")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mediadl", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--auth-addr",
        default=os.environ.get("MEDIADL_AUTH_ADDR") or DEFAULT_AUTH_ADDR,
        help="auth server host:port (env MEDIADL_AUTH_ADDR, default %(default)s)",
    )
    parser.add_argument(
        "--download-addr",
        default=os.environ.get("MEDIADL_DOWNLOAD_ADDR") or DEFAULT_DOWNLOAD_ADDR,
        help="download server host:port (env MEDIADL_DOWNLOAD_ADDR, default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts (streams: one object per line)")
    parser.add_argument(
        "--config-dir", help="where tokens.json is kept (default $XDG_CONFIG_HOME/mediadl or ~/.config/mediadl)"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each call (default 10)")
    parser.add_argument(
        "--tls-ca",
        default=os.environ.get("TLS_CA_FILE") or None,
        help="speak TLS, trusting this CA file (env TLS_CA_FILE; without it and --tls: plaintext)",
    )
    parser.add_argument(
        "--tls-cert",
        default=os.environ.get("TLS_CLIENT_CERT_FILE") or None,
        help="client certificate for servers that require one (mTLS; env TLS_CLIENT_CERT_FILE)",
    )
    parser.add_argument(
        "--tls-key",
        default=os.environ.get("TLS_CLIENT_KEY_FILE") or None,
        help="the client certificate's key (env TLS_CLIENT_KEY_FILE)",
    )
    parser.add_argument("--tls", action="store_true", help="speak TLS trusting the system's CAs")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str, handler: object
    ) -> argparse.ArgumentParser:
        sub = subparsers.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    sub = command(commands, "register", "create an account (then `mediadl login`)", auth_commands.register)
    sub.add_argument("--email", required=True)
    sub.add_argument("--username", required=True, help="3-50 of letters, digits, _ . -")
    sub.add_argument("--full-name", default="")
    _password_options(sub)
    sub = command(
        commands, "login", "log in; tokens are kept in <config-dir>/tokens.json (mode 0600)", auth_commands.login
    )
    sub.add_argument("--email", help="asked for when not given")
    _password_options(sub)
    command(commands, "logout", "revoke this login on the server and forget the tokens", auth_commands.logout)
    command(commands, "whoami", "show the logged-in user", auth_commands.whoami)

    task = commands.add_parser("task", help="create, list, show, start, pause, resume, cancel, retry, delete tasks")
    tasks = task.add_subparsers(dest="task_command", metavar="ACTION", required=True)
    sub = command(tasks, "create", "create a download task (PENDING until started)", task_commands.create)
    sub.add_argument("--url", required=True, help="the resource to download (http or https)")
    sub.add_argument(
        "--type",
        choices=task_commands.TYPE_CHOICES,
        type=str.lower,
        help="resource type (default: guessed from the URL: .m3u8, .mpd, .mp4, .flv, .jpg/.png/...)",
    )
    sub.add_argument("--liveroom-id", required=True, help="1-20 characters")
    sub.add_argument("--title", help="liveroom title")
    sub.add_argument("--liveroom-url")
    sub.add_argument("--video-id", help="business video id, a UUID (default: a new one)")
    sub.add_argument("--start", action="store_true", help="start it at once and show its progress")
    sub = command(tasks, "list", "list your tasks, newest first", task_commands.list_)
    sub.add_argument("--status", action="append", type=_status, help="only this status (repeatable)")
    sub.add_argument("--order-by", choices=ORDERS)
    _paging(sub)
    for name, help_text, handler in [
        ("show", "show one task", task_commands.show),
        ("pause", "pause a running download (finished segments are kept)", task_commands.pause),
        ("resume", "resume a paused download", task_commands.resume),
        ("cancel", "cancel a pending, running or paused download", task_commands.cancel),
    ]:
        _task_ref(command(tasks, name, help_text, handler))
    for name, help_text, handler in [
        ("start", "start a download and show its progress until it ends", task_commands.start),
        ("retry", "fetch again only what failed, showing progress", task_commands.retry),
    ]:
        sub = command(tasks, name, help_text, handler)
        _task_ref(sub)
        sub.add_argument("--detach", action="store_true", help="return at once; the download goes on")
    sub = command(tasks, "delete", "delete a task (a running download is stopped first)", task_commands.delete)
    _task_ref(sub)
    sub.add_argument("--delete-files", action="store_true", help="also delete the downloaded files")

    sub = command(
        commands, "watch", "follow one task's progress with a live bar until it ends or pauses", task_commands.watch
    )
    _task_ref(sub)
    sub = command(
        commands, "dashboard", "live full-screen table of all your tasks (q or Ctrl-C quits)", dashboard.dashboard
    )
    sub.add_argument("--status", action="append", type=_status, help="only tasks in this status (repeatable)")

    failures = commands.add_parser("failures", help="list, retry or abandon failed segments")
    actions = failures.add_subparsers(dest="failures_command", metavar="ACTION", required=True)
    sub = command(actions, "list", "list failure records", record_commands.failures_list)
    sub.add_argument("--task", help="only this task's failures")
    sub.add_argument("--status", action="append", type=_failure_status, help="only this status (repeatable)")
    _paging(sub)
    for name, help_text, handler in [
        ("retry", "fetch that segment again now (exit 1 if it fails again)", record_commands.failures_retry),
        ("abandon", "close the record without fetching", record_commands.failures_abandon),
    ]:
        sub = command(actions, name, help_text, handler)
        sub.add_argument("failure", metavar="FAILURE", help="failure id")
        sub.add_argument("--task", help="the failure's task (checked by the server)")

    videos = commands.add_parser(
        "videos", aliases=["video"], help="list, show or get (download) what finished downloads produced"
    )
    actions = videos.add_subparsers(dest="videos_command", metavar="ACTION", required=True)
    sub = command(actions, "list", "list a task's videos", record_commands.videos_list)
    _task_ref(sub)
    _paging(sub)
    sub = command(actions, "show", "show a video by its business video id", record_commands.videos_show)
    sub.add_argument("video_id", metavar="VIDEO_ID")
    video_commands.add_get(command(actions, "get", video_commands.GET_HELP, video_commands.video_get))
    _admin(commands, command)
    return parser


def _admin(commands: argparse._SubParsersAction[argparse.ArgumentParser], command: Any) -> None:
    admin = commands.add_parser("admin", help="user administration (superusers only)")
    groups = admin.add_subparsers(dest="admin_command", metavar="AREA", required=True)
    users = groups.add_parser("users", help="list users, deactivate, activate, promote or demote them")
    actions = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    sub = command(actions, "list", "list users, oldest first", admin_commands.users_list)
    sub.add_argument("--query", default="", help="only users whose email or username contains this (any case)")
    _paging(sub)
    for name, help_text, handler in [
        ("deactivate", "deactivate a user: refused logins, tokens revoked everywhere", admin_commands.users_deactivate),
        ("activate", "activate a user again (they log in anew)", admin_commands.users_activate),
        ("promote", "make a user a superuser", admin_commands.users_promote),
        ("demote", "take superuser rights away", admin_commands.users_demote),
    ]:
        sub = command(actions, name, help_text, handler)
        sub.add_argument("user", metavar="USER", help="user id, email or username (not yourself)")
