"""`mediadl task ...` and `mediadl watch`: task CRUD, state changes, and following a download's progress."""

from __future__ import annotations

import argparse
import uuid
from urllib.parse import urlsplit

from clients.cli import exit_codes
from clients.cli.context import CliError, Context, resolve_task_id
from clients.cli.output import details, human_bytes, human_time, print_json, short_id, table
from clients.cli.progress import ProgressPrinter
from clients.models import Page, ResourceType, Task, TaskEvent, TaskStatus
from clients.streams import TaskEventStream

_TYPE_BY_EXTENSION = {
    ".m3u8": ResourceType.HLS,
    ".mpd": ResourceType.DASH,
    ".mp4": ResourceType.MP4,
    ".flv": ResourceType.FLV,
    ".jpg": ResourceType.IMAGE,
    ".jpeg": ResourceType.IMAGE,
    ".png": ResourceType.IMAGE,
    ".gif": ResourceType.IMAGE,
    ".webp": ResourceType.IMAGE,
}
# What `task create --type` takes (the lower-case names of the resource types).
TYPE_CHOICES = ("hls", "dash", "mp4", "image", "flv")
# How a followed download's last state becomes the exit code: scripts can `mediadl watch ID && play`.
_EXIT_BY_STATUS = {TaskStatus.COMPLETED: exit_codes.OK, TaskStatus.PAUSED: exit_codes.OK}


def guess_resource_type(url: str) -> ResourceType:
    path = urlsplit(url).path.lower()
    for extension, kind in _TYPE_BY_EXTENSION.items():
        if path.endswith(extension):
            return kind
    choices = "|".join(TYPE_CHOICES)
    raise CliError(f"cannot tell the resource type from {url!r}: pass --type {choices}", exit_codes.USAGE)


def task_rows(tasks: list[Task]) -> list[list[str]]:
    return [
        [
            short_id(t.id),
            t.status.value,
            f"{t.progress * 100:.0f}%",
            t.resource_type.value,
            t.liveroom_id,
            human_time(t.update_time),
            t.liveroom_title or "-",
        ]
        for t in tasks
    ]


TASK_HEADERS = ["ID", "STATUS", "PROGRESS", "TYPE", "LIVEROOM", "UPDATED", "TITLE"]


def show_task(ctx: Context, task: Task) -> None:
    bytes_text = human_bytes(task.bytes_downloaded)
    if task.bytes_total:
        bytes_text += f" of {human_bytes(task.bytes_total)}"
    pairs = [
        ("id", task.id),
        ("status", task.status.value),
        ("progress", f"{task.progress * 100:.1f}%"),
        ("downloaded", bytes_text),
        ("segments", f"{task.segments_done}/{task.segments_total} done, {task.segments_failed} failed"),
        ("type", task.resource_type.value),
        ("resource url", task.resource_url),
        ("video id", task.video_id),
        ("liveroom", f"{task.liveroom_id} {task.liveroom_url}".strip()),
        ("title", task.liveroom_title or "-"),
        ("retries", str(task.retry_count)),
        ("created", human_time(task.create_time)),
        ("updated", human_time(task.update_time)),
        ("completed", human_time(task.complete_time)),
    ]
    if task.last_error:
        pairs.append(("last error", task.last_error))
    details(pairs, ctx.stdout)


async def create(ctx: Context, args: argparse.Namespace) -> int:
    kind = ResourceType(args.type.upper()) if args.type else guess_resource_type(args.url)
    task = await ctx.api.create_task(
        video_id=args.video_id or str(uuid.uuid4()),
        liveroom_id=args.liveroom_id,
        resource_url=args.url,
        resource_type=kind,
        liveroom_title=args.title or "",
        liveroom_url=args.liveroom_url or "",
    )
    if args.start:
        if not ctx.json:
            ctx.say(f"created task {task.id}")
        return await follow(ctx, ctx.api.start(task.id))
    ctx.emit(task, lambda: ctx.say(f"created task {task.id} ({task.status.value}): `mediadl task start {task.id}`"))
    return exit_codes.OK


async def list_(ctx: Context, args: argparse.Namespace) -> int:
    statuses = [TaskStatus(s) for s in args.status or ()]
    if args.all:
        tasks = [t async for t in ctx.api.iter_tasks(statuses=statuses, order_by=args.order_by or "")]
        page = Page(items=tuple(tasks), next_page_token="", total_size=len(tasks))
    else:
        page = await ctx.api.list_tasks(
            statuses=statuses, order_by=args.order_by or "", page_size=args.page_size, page_token=args.page_token
        )

    def human() -> None:
        table(task_rows(list(page.items)), TASK_HEADERS, ctx.stdout)
        more = f"; next page: --page-token {page.next_page_token}" if page.next_page_token else ""
        ctx.stderr.write(f"{len(page.items)} of {page.total_size} task(s){more}\n")

    if ctx.json:
        print_json(
            {"tasks": list(page.items), "next_page_token": page.next_page_token, "total_size": page.total_size},
            ctx.stdout,
        )
    else:
        human()
    return exit_codes.OK


async def show(ctx: Context, args: argparse.Namespace) -> int:
    task = await ctx.api.get_task(await resolve_task_id(ctx, args.task))
    ctx.emit(task, lambda: show_task(ctx, task))
    return exit_codes.OK


async def start(ctx: Context, args: argparse.Namespace) -> int:
    return await follow(ctx, ctx.api.start(await resolve_task_id(ctx, args.task)), detach=args.detach)


async def retry(ctx: Context, args: argparse.Namespace) -> int:
    return await follow(ctx, ctx.api.retry(await resolve_task_id(ctx, args.task)), detach=args.detach)


async def watch(ctx: Context, args: argparse.Namespace) -> int:
    return await follow(ctx, ctx.api.watch(await resolve_task_id(ctx, args.task)))


async def pause(ctx: Context, args: argparse.Namespace) -> int:
    return _changed(ctx, await ctx.api.pause(await resolve_task_id(ctx, args.task)))


async def resume(ctx: Context, args: argparse.Namespace) -> int:
    return _changed(ctx, await ctx.api.resume(await resolve_task_id(ctx, args.task)))


async def cancel(ctx: Context, args: argparse.Namespace) -> int:
    return _changed(ctx, await ctx.api.cancel(await resolve_task_id(ctx, args.task)))


async def delete(ctx: Context, args: argparse.Namespace) -> int:
    task_id = await resolve_task_id(ctx, args.task)
    await ctx.api.delete_task(task_id, delete_files=args.delete_files)
    files = " and its files" if args.delete_files else ""
    ctx.emit({"deleted": task_id, "delete_files": args.delete_files}, lambda: ctx.say(f"deleted task {task_id}{files}"))
    return exit_codes.OK


def _changed(ctx: Context, task: Task) -> int:
    ctx.emit(task, lambda: ctx.say(f"task {task.id} is {task.status.value}"))
    return exit_codes.OK


async def follow(ctx: Context, events: TaskEventStream, *, detach: bool = False) -> int:
    """Show a stream's events until it ends (or only the first with `detach`); the exit code reflects the end."""
    tty = ctx.stdout.isatty()
    unicode = (getattr(ctx.stdout, "encoding", None) or "").lower().replace("-", "") == "utf8"
    printer = ProgressPrinter(ctx.stdout, tty=tty, unicode=unicode)
    last: TaskEvent | None = None
    try:
        async with events:
            async for event in events:
                last = event
                if ctx.json:
                    print_json(event, ctx.stdout, compact=True)
                else:
                    printer.update(event)
                if detach:
                    break
    finally:
        printer.finish()
    if last is None:
        raise CliError("the server closed the stream without sending the task's state")
    if detach:
        if not ctx.json:
            ctx.say(f"task {last.task_id} is {last.status.value}; follow it with `mediadl watch {last.task_id}`")
        return exit_codes.OK
    if not ctx.json:
        ctx.say(_summary(last))
    return _EXIT_BY_STATUS.get(last.status, exit_codes.ERROR)


def _summary(event: TaskEvent) -> str:
    text = f"{event.status.value}: {human_bytes(event.bytes_downloaded)}"
    if event.segments_total:
        text += f", {event.segments_done}/{event.segments_total} segments"
        if event.segments_failed:
            text += f" ({event.segments_failed} failed: `mediadl failures list --task {event.task_id}`)"
    return text + (f" - {event.message}" if event.message else "")
