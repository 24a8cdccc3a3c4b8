"""Task events as PostgreSQL NOTIFY payloads: compact JSON under the payload limit, or a reference to the row."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from download_server.domain.models import TaskEvent, TaskStatus

# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; keep a margin.
MAX_PAYLOAD = 7900
# A message longer than this is clipped before an event is sent by reference instead.
MAX_MESSAGE = 1000


def encode_event(event: TaskEvent, origin: str) -> str:
    """Compact JSON of the event's fields, under the payload limit: a long message is clipped, and if that is
    not enough the event goes by reference (listeners read the task's row)."""
    fields: dict[str, Any] = {
        "o": origin,
        "t": event.task_id,
        "u": event.user_id,
        "s": event.status.value,
        "p": event.progress,
        "b": event.bytes_downloaded,
        "B": event.bytes_total,
        "d": event.segments_done,
        "f": event.segments_failed,
        "n": event.segments_total,
        "v": event.speed_bytes_per_second,
        "e": event.eta_seconds,
        "m": event.message,
        "at": event.event_time.isoformat(),
    }
    text = _dump(fields)
    if len(text.encode()) > MAX_PAYLOAD:
        fields["m"] = event.message[:MAX_MESSAGE]
        text = _dump(fields)
    if len(text.encode()) > MAX_PAYLOAD:
        text = _dump({"o": origin, "r": event.task_id})
    return text


def decode_event(payload: str) -> tuple[str, TaskEvent | str]:
    """(origin replica, the event) or, for an event sent by reference, (origin, its task id)."""
    fields = json.loads(payload)
    origin = str(fields["o"])
    if "r" in fields:
        return origin, str(fields["r"])
    return origin, TaskEvent(
        task_id=str(fields["t"]),
        user_id=str(fields["u"]),
        status=TaskStatus(fields["s"]),
        progress=float(fields["p"]),
        bytes_downloaded=int(fields["b"]),
        bytes_total=int(fields["B"]),
        segments_done=int(fields["d"]),
        segments_failed=int(fields["f"]),
        segments_total=int(fields["n"]),
        speed_bytes_per_second=float(fields["v"]),
        eta_seconds=float(fields["e"]),
        message=str(fields["m"]),
        event_time=datetime.fromisoformat(fields["at"]),
    )


def _dump(fields: dict[str, Any]) -> str:
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
