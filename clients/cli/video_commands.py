"""`mediadl video get VIDEO_ID -o FILE`: fetch a recording (or its thumbnail) back, resuming a partial FILE."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import BinaryIO

from clients.cli import exit_codes
from clients.cli.context import CliError, Context
from clients.cli.output import human_bytes
from clients.cli.progress import CLEAR_TO_END, bar

REDRAW_SECONDS = 0.1
GET_HELP = (
    "download a recording by its business video id: the MP4 or image (an HLS- or DASH-only recording: one of "
    "its files with --path), or its thumbnail; a partial FILE is resumed"
)


def add_get(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video_id", metavar="VIDEO_ID", help="the task's video id (as `videos show` takes it)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write (resumed if present)")
    parser.add_argument("--thumbnail", action="store_true", help="get the JPEG thumbnail instead of the media")
    parser.add_argument(
        "--path",
        help="a file of an HLS or DASH recording, relative to its folder (e.g. index.m3u8, manifest.mpd)",
    )
    parser.add_argument("--overwrite", action="store_true", help="start FILE over instead of resuming it")


async def video_get(ctx: Context, args: argparse.Namespace) -> int:
    target = Path(args.output)
    out, offset = await asyncio.to_thread(_open, target, args.overwrite)
    shown = _Progress(ctx, target.name)
    total = written = 0
    try:
        chunks = ctx.api.read_video(
            args.video_id, offset=offset, kind="thumbnail" if args.thumbnail else "media", path=args.path or ""
        )
        async for chunk in chunks:
            total = chunk.total_size
            if chunk.offset != offset + written:
                raise CliError(f"the server sent bytes from {chunk.offset}, expected {offset + written}")
            await asyncio.to_thread(out.write, chunk.data)
            written += len(chunk.data)
            shown.update(offset + written, total)
        await asyncio.to_thread(_sync, out)
    finally:
        out.close()
        shown.done()
    result = {"file": str(target), "bytes_written": written, "resumed_from": offset, "total_size": total}
    ctx.emit(result, lambda: ctx.say(_summary(target, written, offset, total)))
    return exit_codes.OK


def _open(target: Path, overwrite: bool) -> tuple[BinaryIO, int]:
    """The file to append to and where it ends: what is there was written by an interrupted get."""
    if overwrite or not target.exists():
        return target.open("wb"), 0
    return target.open("ab"), target.stat().st_size


def _sync(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


def _summary(target: Path, written: int, offset: int, total: int) -> str:
    resumed = f", resumed at {human_bytes(offset)}" if offset else ""
    return f"saved {target} ({human_bytes(total)}{resumed})"


class _Progress:
    """A bar on standard error while the file arrives, when that is a terminal (scripts get no noise)."""

    def __init__(self, ctx: Context, name: str) -> None:
        self._ctx = ctx
        self._name = name
        self._on = not ctx.json and ctx.stderr.isatty()
        self._last = 0.0

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self._on or (now - self._last < REDRAW_SECONDS and done < total):
            return
        self._last = now
        share = done / total if total else 1.0
        line = f"\r{self._name} {bar(share, 30)} {share * 100:5.1f}% {human_bytes(done)} of {human_bytes(total)}"
        self._ctx.stderr.write(line + CLEAR_TO_END)
        self._ctx.stderr.flush()

    def done(self) -> None:
        if self._on:
            self._ctx.stderr.write("\n")
            self._ctx.stderr.flush()
