"""`mediadl failures list|retry|abandon` and `mediadl videos list|show`."""

from __future__ import annotations

import argparse

from clients.cli import exit_codes
from clients.cli.context import Context, resolve_task_id
from clients.cli.output import details, human_bytes, human_duration, human_time, print_json, short_id, table
from clients.models import Failure, FailureStatus, Page, Video

FAILURE_HEADERS = ["ID", "TASK", "SEGMENT", "STATUS", "ATTEMPTS", "HTTP", "TYPE", "MESSAGE"]
VIDEO_HEADERS = ["ID", "VIDEO ID", "FORMAT", "SIZE", "DURATION", "SEGMENTS", "PATH"]


def _failure_rows(failures: list[Failure]) -> list[list[str]]:
    return [
        [
            f.id,
            short_id(f.task_id),
            "whole" if f.segment_index < 0 else str(f.segment_index),
            f.status.value,
            str(f.attempts),
            str(f.http_status or "-"),
            f.error_type,
            f.error_message,
        ]
        for f in failures
    ]


def _print_page(
    ctx: Context, key: str, page: Page[Failure] | Page[Video], rows: list[list[str]], headers: list[str]
) -> None:
    if ctx.json:
        print_json(
            {key: list(page.items), "next_page_token": page.next_page_token, "total_size": page.total_size}, ctx.stdout
        )
        return
    table(rows, headers, ctx.stdout)
    more = f"; next page: --page-token {page.next_page_token}" if page.next_page_token else ""
    ctx.stderr.write(f"{len(page.items)} of {page.total_size} {key}{more}\n")


async def failures_list(ctx: Context, args: argparse.Namespace) -> int:
    task_id = await resolve_task_id(ctx, args.task) if args.task else None
    statuses = [FailureStatus(s) for s in args.status or ()]
    page: Page[Failure]
    if args.all:
        items = [f async for f in ctx.api.iter_failures(task_id=task_id, statuses=statuses)]
        page = Page(items=tuple(items), next_page_token="", total_size=len(items))
    else:
        page = await ctx.api.list_failures(
            task_id=task_id, statuses=statuses, page_size=args.page_size, page_token=args.page_token
        )
    _print_page(ctx, "failures", page, _failure_rows(list(page.items)), FAILURE_HEADERS)
    return exit_codes.OK


def _show_failure(ctx: Context, failure: Failure) -> None:
    details(
        [
            ("id", failure.id),
            ("task", failure.task_id),
            ("segment", "whole resource" if failure.segment_index < 0 else str(failure.segment_index)),
            ("status", failure.status.value),
            ("attempts", str(failure.attempts)),
            (
                "error",
                f"{failure.error_type}: {failure.error_message}"
                + (f" (HTTP {failure.http_status})" if failure.http_status else ""),
            ),
            ("url", failure.segment_url or "-"),
            ("updated", human_time(failure.update_time)),
        ],
        ctx.stdout,
    )


async def failures_retry(ctx: Context, args: argparse.Namespace) -> int:
    task_id = await resolve_task_id(ctx, args.task) if args.task else None
    failure = await ctx.api.retry_failure(args.failure, task_id=task_id)
    ctx.emit(failure, lambda: _show_failure(ctx, failure))
    # A retry the server ran but that failed again is not the CLI's error; scripts still want to know.
    return exit_codes.OK if failure.status is FailureStatus.RESOLVED else exit_codes.ERROR


async def failures_abandon(ctx: Context, args: argparse.Namespace) -> int:
    task_id = await resolve_task_id(ctx, args.task) if args.task else None
    failure = await ctx.api.abandon_failure(args.failure, task_id=task_id)
    ctx.emit(failure, lambda: _show_failure(ctx, failure))
    return exit_codes.OK


def _video_rows(videos: list[Video]) -> list[list[str]]:
    return [
        [
            short_id(v.id),
            v.video_id,
            v.format,
            human_bytes(v.file_size),
            human_duration(v.duration_seconds) if v.duration_seconds else "-",
            str(v.segment_count),
            v.file_path,
        ]
        for v in videos
    ]


async def videos_list(ctx: Context, args: argparse.Namespace) -> int:
    task_id = await resolve_task_id(ctx, args.task)
    page: Page[Video]
    if args.all:
        items = [v async for v in ctx.api.iter_task_videos(task_id)]
        page = Page(items=tuple(items), next_page_token="", total_size=len(items))
    else:
        page = await ctx.api.list_task_videos(task_id, page_size=args.page_size, page_token=args.page_token)
    _print_page(ctx, "videos", page, _video_rows(list(page.items)), VIDEO_HEADERS)
    return exit_codes.OK


async def videos_show(ctx: Context, args: argparse.Namespace) -> int:
    video = await ctx.api.get_video(args.video_id)
    ctx.emit(
        video,
        lambda: details(
            [
                ("id", video.id),
                ("video id", video.video_id),
                ("task", video.task_id),
                ("format", video.format),
                ("file", video.file_path),
                ("size", human_bytes(video.file_size)),
                ("duration", human_duration(video.duration_seconds) if video.duration_seconds else "-"),
                ("segments", str(video.segment_count)),
                ("sha256", video.sha256 or "-"),
                ("created", human_time(video.create_time)),
            ],
            ctx.stdout,
        ),
    )
    return exit_codes.OK
