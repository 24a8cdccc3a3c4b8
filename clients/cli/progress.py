"""The `watch` progress display: a bar redrawn in place on a terminal, one plain line a second otherwise."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TextIO

from clients.cli.output import human_bytes, human_duration
from clients.models import TaskEvent, TaskStatus

CLEAR_TO_END = "\x1b[K"


def bar(progress: float, width: int, *, unicode: bool = True) -> str:
    """`[████░░░░]` for progress in 0..1 (clamped); eighth blocks make slow progress visible."""
    progress = min(max(progress, 0.0), 1.0)
    if not unicode:
        filled = int(progress * width)
        return "[" + "#" * filled + "-" * (width - filled) + "]"
    eighths = int(progress * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if full < width and part else ""
    return "[" + "█" * full + partial + "░" * (width - full - len(partial)) + "]"


def describe(event: TaskEvent) -> list[str]:
    """The bar's text fields: percent, bytes, segments, speed, ETA and (when not downloading) the status."""
    parts = [f"{event.progress * 100:5.1f}%"]
    if event.bytes_total > 0:
        parts.append(f"{human_bytes(event.bytes_downloaded)}/{human_bytes(event.bytes_total)}")
    else:
        parts.append(human_bytes(event.bytes_downloaded))
    if event.segments_total > 0:
        segments = f"seg {event.segments_done}/{event.segments_total}"
        if event.segments_failed:
            segments += f" ({event.segments_failed} failed)"
        parts.append(segments)
    if event.status is TaskStatus.PROCESSING:
        if event.speed_bytes_per_second > 0:
            parts.append(f"{human_bytes(event.speed_bytes_per_second)}/s")
        if event.eta_seconds > 0:
            parts.append(f"ETA {human_duration(event.eta_seconds)}")
    else:
        parts.append(event.status.value)
    return parts


def render_line(event: TaskEvent, columns: int, *, unicode: bool = True) -> str:
    """One terminal line of at most `columns` characters: the bar shrinks first, then text is cut."""
    text = "  ".join(describe(event))
    bar_width = min(30, columns - len(text) - 4)
    line = f"{bar(event.progress, bar_width, unicode=unicode)}  {text}" if bar_width >= 10 else text
    return line[:columns]


def plain_line(event: TaskEvent) -> str:
    """The non-terminal form: a timestamped line that logs and pipes can keep."""
    when = event.event_time.astimezone() if event.event_time else None
    stamp = when.strftime("%H:%M:%S") if when else time.strftime("%H:%M:%S")
    fields = describe(event)
    if event.status is not TaskStatus.PROCESSING:
        fields = fields[:-1]  # the status already leads the line
    line = f"{stamp} {event.status.value:<10} " + "  ".join(fields)
    return line + (f"  {event.message}" if event.message else "")


class ProgressPrinter:
    """Feeds events to the display; on a terminal it redraws one line, elsewhere it prints at most once a second
    (plus every status change), so piping to a file gives a readable log, not a flood of carriage returns."""

    def __init__(
        self, stream: TextIO, *, tty: bool, unicode: bool = True, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._tty = tty
        self._unicode = unicode
        self._clock = clock
        self._last_print: float | None = None
        self._last_status: TaskStatus | None = None
        self._drawn = False

    def update(self, event: TaskEvent) -> None:
        if self._tty:
            columns = shutil.get_terminal_size((80, 24)).columns - 1
            self._stream.write("\r" + render_line(event, columns, unicode=self._unicode) + CLEAR_TO_END)
            self._drawn = True
        else:
            now = self._clock()
            due = self._last_print is None or now - self._last_print >= 1.0
            if due or event.status is not self._last_status or event.status.ends_stream:
                self._stream.write(plain_line(event) + "\n")
                self._last_print = now
        self._last_status = event.status
        self._stream.flush()

    def finish(self) -> None:
        """Leave the cursor on a fresh line after the bar."""
        if self._tty and self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False
