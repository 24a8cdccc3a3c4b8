"""The progress display: what a bar line says, that it fits the terminal, and the non-TTY line rate."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from clients.cli.output import human_bytes, human_duration
from clients.cli.progress import ProgressPrinter, bar, render_line
from clients.models import TaskEvent, TaskStatus


def event(status: TaskStatus = TaskStatus.PROCESSING, **fields: object) -> TaskEvent:
    values: dict[str, object] = {
        "task_id": "t1",
        "status": status,
        "progress": 0.5,
        "bytes_downloaded": 3 * 1024 * 1024,
        "bytes_total": 6 * 1024 * 1024,
        "segments_done": 3,
        "segments_failed": 0,
        "segments_total": 6,
        "speed_bytes_per_second": 1024 * 1024,
        "eta_seconds": 3,
        "message": "",
        "event_time": datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC),
    }
    values.update(fields)
    return TaskEvent(**values)  # type: ignore[arg-type]


def test_bar_shapes() -> None:
    assert bar(0.0, 10) == "[" + "░" * 10 + "]"
    assert bar(1.0, 10) == "[" + "█" * 10 + "]"
    assert bar(0.5, 10, unicode=False) == "[#####-----]"
    assert bar(7.0, 4, unicode=False) == "[####]"  # clamped
    assert len(bar(0.33, 20)) == 22


def test_line_has_bytes_segments_speed_and_eta() -> None:
    line = render_line(event(segments_failed=1), 200)
    for part in ["50.0%", "3.0 MiB/6.0 MiB", "seg 3/6 (1 failed)", "1.0 MiB/s", "ETA 0:03"]:
        assert part in line


def test_line_fits_narrow_terminals() -> None:
    for columns in (20, 40, 60, 80):
        assert len(render_line(event(), columns)) <= columns


def test_finished_line_shows_status_not_speed() -> None:
    line = render_line(event(TaskStatus.COMPLETED, progress=1.0), 120)
    assert "COMPLETED" in line and "MiB/s" not in line and "ETA" not in line


def test_unknown_total_shows_bytes_so_far() -> None:
    assert "3.0 MiB" in render_line(event(bytes_total=0), 120)


def test_human_units() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_duration(75) == "1:15"
    assert human_duration(3725) == "1:02:05"


def test_tty_redraws_one_line_in_place() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(out, tty=True)
    printer.update(event(progress=0.1))
    printer.update(event(progress=0.2))
    printer.finish()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.count("\n") == 1 and text.endswith("\n")
    assert "\x1b[K" in text


def test_not_a_tty_prints_at_most_one_line_a_second_plus_status_changes() -> None:
    now = [0.0]
    out = io.StringIO()
    printer = ProgressPrinter(out, tty=False, clock=lambda: now[0])
    for step in range(10):  # ten events within one second: one line
        now[0] = step * 0.1
        printer.update(event(progress=step / 10))
    now[0] = 1.05  # a second later: another line
    printer.update(event(progress=0.95))
    now[0] = 1.1  # a status change always prints, however soon
    printer.update(event(TaskStatus.COMPLETED, progress=1.0))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()
    assert "PROCESSING" in lines[0] and "COMPLETED" in lines[2]
