"""How the CLI prints: JSON for scripts, aligned tables and key/value blocks for people, human sizes and times."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, TextIO

from clients.models import Page


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, datetimes and pages as plain JSON values (enums by name, times in ISO-8601)."""
    if isinstance(value, Page):
        return {
            "items": [to_jsonable(item) for item in value.items],
            "next_page_token": value.next_page_token,
            "total_size": value.total_size,
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any, stream: TextIO, *, compact: bool = False) -> None:
    text = json.dumps(
        to_jsonable(value),
        ensure_ascii=False,
        separators=(",", ":") if compact else None,
        indent=None if compact else 2,
    )
    stream.write(text + "\n")
    stream.flush()


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    """75 -> '1:15', 3725 -> '1:02:05'."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def human_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def short_id(value: str) -> str:
    """The first 8 characters of a UUID: enough to tell tasks apart; the CLI accepts prefixes."""
    return value[:8]


def table(rows: Sequence[Sequence[str]], headers: Sequence[str], stream: TextIO, *, fit: bool = True) -> None:
    """Left-aligned columns; with `fit`, the last column is cut to the terminal width."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    limit = shutil.get_terminal_size((120, 24)).columns if fit else None
    for row in [list(headers), *rows]:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        if limit is not None and len(line) > limit:
            line = line[: max(limit - 1, 0)] + "…"
        stream.write(line + "\n")


def details(pairs: Iterable[tuple[str, str]], stream: TextIO) -> None:
    """A `key: value` block, keys aligned."""
    items = list(pairs)
    width = max((len(key) for key, _ in items), default=0)
    for key, value in items:
        stream.write(f"{key + ':':<{width + 1}} {value}\n")
