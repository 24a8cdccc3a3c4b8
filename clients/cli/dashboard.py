"""`mediadl dashboard`: a live full-screen table of every task, fed by WatchTasks, on the alternate screen."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import termios
import time
import tty
from collections.abc import Iterator
from typing import TextIO

from clients.cli import exit_codes
from clients.cli.context import CliError, Context
from clients.cli.dashboard_view import DashboardState, render
from clients.cli.output import print_json
from clients.errors import NotFoundError, UnavailableError
from clients.models import TaskStatus

ENTER_SCREEN = "\x1b[?1049h\x1b[?25l"  # alternate screen, hide cursor
LEAVE_SCREEN = "\x1b[?25h\x1b[?1049l"  # show cursor, back to the normal screen
FRAME_SECONDS = 0.2  # redraw at most five times a second however many events arrive
RECONNECT_MAX_SECONDS = 5.0


@contextlib.contextmanager
def terminal_screen(out: TextIO, keys_fd: int | None) -> Iterator[None]:
    """Alternate screen and single-key input for the duration; the terminal is restored whatever happens."""
    saved = termios.tcgetattr(keys_fd) if keys_fd is not None else None
    try:
        if keys_fd is not None:
            tty.setcbreak(keys_fd)  # keys arrive at once and unechoed; Ctrl-C still sends SIGINT
        out.write(ENTER_SCREEN)
        out.flush()
        yield
    finally:
        out.write(LEAVE_SCREEN)
        out.flush()
        if keys_fd is not None and saved is not None:
            termios.tcsetattr(keys_fd, termios.TCSADRAIN, saved)


class Dashboard:
    def __init__(self, ctx: Context, statuses: frozenset[TaskStatus]) -> None:
        self.ctx = ctx
        self.state = DashboardState(statuses)
        self.dirty = asyncio.Event()
        self.quit = asyncio.Event()
        self.exit_code = exit_codes.OK
        self._fetching: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._unicode = (getattr(ctx.stdout, "encoding", None) or "").lower().replace("-", "") == "utf8"

    async def load(self) -> None:
        async for task in self.ctx.api.iter_tasks(statuses=sorted(self.state.statuses)):
            self.state.add_task(task)
        self.dirty.set()

    async def watch(self) -> None:
        """Follow WatchTasks for ever; when the server goes away, say so and reconnect with backoff."""
        delay = 0.5
        while True:
            try:
                async with self.ctx.api.watch_all(statuses=sorted(self.state.statuses)) as events:
                    async for event in events:
                        if delay != 0.5 or self.state.notice:
                            delay, self.state.notice = 0.5, ""
                        if not self.state.apply(event):
                            self._fetch_details(event.task_id)
                        self.dirty.set()
                self.state.notice = "the server ended the stream: reconnecting"
            except UnavailableError as exc:
                self.state.notice = f"connection lost ({exc.message}): reconnecting in {delay:g}s"
            self.dirty.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)
            with contextlib.suppress(UnavailableError):
                await self.load()

    def _fetch_details(self, task_id: str) -> None:
        if task_id in self._fetching:
            return
        self._fetching.add(task_id)

        async def fetch() -> None:
            with contextlib.suppress(NotFoundError, UnavailableError):
                self.state.fill_in(await self.ctx.api.get_task(task_id))
                self.dirty.set()

        job = asyncio.create_task(fetch())
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def draw_forever(self) -> None:
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            size = shutil.get_terminal_size((100, 30))
            lines = render(self.state, size.columns, size.lines, clock=time.strftime("%H:%M:%S"), unicode=self._unicode)
            # Home, overwrite each line, clear what is left: no flicker from clearing the whole screen first.
            frame = "\x1b[H" + "".join(line + "\x1b[K\n" for line in lines[:-1]) + lines[-1] + "\x1b[K\x1b[J"
            self.ctx.stdout.write(frame)
            self.ctx.stdout.flush()
            await asyncio.sleep(FRAME_SECONDS)

    def on_key(self, fd: int) -> None:
        data = os.read(fd, 64)
        if not data or b"q" in data.lower():
            self.quit.set()

    def on_interrupt(self) -> None:
        self.exit_code = exit_codes.INTERRUPTED
        self.quit.set()


async def dashboard(ctx: Context, args: argparse.Namespace) -> int:
    statuses = frozenset(TaskStatus(s) for s in args.status or ())
    if ctx.json:
        return await _json_events(ctx, statuses)
    if not ctx.stdout.isatty():
        raise CliError("the dashboard needs a terminal; for scripts use `mediadl --json dashboard`", exit_codes.USAGE)
    board = Dashboard(ctx, statuses)
    await board.load()
    loop = asyncio.get_running_loop()
    keys_fd = sys.stdin.fileno() if sys.stdin.isatty() else None
    with terminal_screen(ctx.stdout, keys_fd):
        if keys_fd is not None:
            loop.add_reader(keys_fd, board.on_key, keys_fd)
        loop.add_signal_handler(signal.SIGINT, board.on_interrupt)
        loop.add_signal_handler(signal.SIGWINCH, board.dirty.set)
        jobs = [asyncio.create_task(board.watch()), asyncio.create_task(board.draw_forever())]
        quitting = asyncio.create_task(board.quit.wait())
        try:
            done, _ = await asyncio.wait([quitting, *jobs], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for job in [quitting, *jobs]:
                job.cancel()
            await asyncio.gather(quitting, *jobs, return_exceptions=True)
            loop.remove_signal_handler(signal.SIGWINCH)
            loop.remove_signal_handler(signal.SIGINT)
            if keys_fd is not None:
                loop.remove_reader(keys_fd)
    for job in jobs:
        if job in done and not job.cancelled() and (error := job.exception()) is not None:
            raise error  # an auth or server error: main() reports it after the terminal is restored
    return board.exit_code


async def _json_events(ctx: Context, statuses: frozenset[TaskStatus]) -> int:
    """For scripts: one JSON object per event, for as long as the caller keeps reading."""
    async with ctx.api.watch_all(statuses=sorted(statuses)) as events:
        async for event in events:
            print_json(event, ctx.stdout, compact=True)
    return exit_codes.OK
