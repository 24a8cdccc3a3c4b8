"""The dashboard's model and drawing: rows of tasks updated by events, rendered to a screenful of lines."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from clients.cli.output import human_bytes, human_duration, short_id
from clients.cli.progress import bar
from clients.models import Task, TaskEvent, TaskStatus

# Active work first, then what waits for the user, then history.
_RANK = {
    TaskStatus.PROCESSING: 0,
    TaskStatus.PAUSED: 1,
    TaskStatus.PENDING: 2,
    TaskStatus.FAILED: 3,
    TaskStatus.PARTIAL_COMPLETED: 4,
    TaskStatus.COMPLETED: 5,
    TaskStatus.CANCELLED: 6,
}
_BAR = 16


@dataclass(frozen=True)
class Row:
    task_id: str
    title: str
    kind: str
    status: TaskStatus
    progress: float
    bytes_downloaded: int
    bytes_total: int
    segments_done: int
    segments_failed: int
    segments_total: int
    speed: float
    eta: float
    updated: datetime | None

    @classmethod
    def from_task(cls, task: Task) -> Row:
        return cls(
            task_id=task.id,
            title=task.liveroom_title or task.liveroom_id,
            kind=task.resource_type.value,
            status=task.status,
            progress=task.progress,
            bytes_downloaded=task.bytes_downloaded,
            bytes_total=task.bytes_total,
            segments_done=task.segments_done,
            segments_failed=task.segments_failed,
            segments_total=task.segments_total,
            speed=0.0,
            eta=0.0,
            updated=task.update_time,
        )

    def with_event(self, event: TaskEvent) -> Row:
        return replace(
            self,
            status=event.status,
            progress=event.progress,
            bytes_downloaded=event.bytes_downloaded,
            bytes_total=event.bytes_total,
            segments_done=event.segments_done,
            segments_failed=event.segments_failed,
            segments_total=event.segments_total,
            speed=event.speed_bytes_per_second if event.status is TaskStatus.PROCESSING else 0.0,
            eta=event.eta_seconds if event.status is TaskStatus.PROCESSING else 0.0,
            updated=event.event_time or self.updated,
        )


class DashboardState:
    """Every task on screen; `statuses` (when given) keeps only tasks in those states."""

    def __init__(self, statuses: frozenset[TaskStatus] = frozenset()) -> None:
        self.rows: dict[str, Row] = {}
        self.statuses = statuses
        self.notice = ""

    def add_task(self, task: Task) -> None:
        if self._wanted(task.status):
            self.rows[task.id] = Row.from_task(task)

    def apply(self, event: TaskEvent) -> bool:
        """Fold an event in; False when the task is not known yet (its details must be fetched)."""
        if not self._wanted(event.status):
            self.rows.pop(event.task_id, None)
            return True
        row = self.rows.get(event.task_id)
        if row is None:
            placeholder = Row(event.task_id, "…", "", event.status, 0.0, 0, 0, 0, 0, 0, 0.0, 0.0, None)
            self.rows[event.task_id] = placeholder.with_event(event)
            return False
        self.rows[event.task_id] = row.with_event(event)
        return True

    def fill_in(self, task: Task) -> None:
        """Title and type of a task first seen through an event; its progress stays the event's."""
        row = self.rows.get(task.id)
        if row is not None:
            self.rows[task.id] = replace(
                row, title=task.liveroom_title or task.liveroom_id, kind=task.resource_type.value
            )

    def _wanted(self, status: TaskStatus) -> bool:
        return not self.statuses or status in self.statuses

    def ordered(self) -> list[Row]:
        def key(row: Row) -> tuple[int, float]:
            stamp = row.updated.timestamp() if row.updated else 0.0
            return (_RANK.get(row.status, 9), -stamp)

        return sorted(self.rows.values(), key=key)


# (header, width, right-aligned); the last column (TITLE) takes what is left.
_COLUMNS = [
    ("ID", 8, False),
    ("STATUS", 17, False),
    ("PROGRESS", _BAR + 9, False),
    ("SIZE", 21, False),
    ("SPEED", 11, True),
    ("ETA", 7, True),
    ("SEGMENTS", 13, False),
    ("TITLE", 0, False),
]


def _line(cells: list[str]) -> str:
    parts = [
        cell if width == 0 else (cell.rjust(width) if right else cell.ljust(width))
        for cell, (_, width, right) in zip(cells, _COLUMNS, strict=True)
    ]
    return "  ".join(parts).rstrip()


def _cells(row: Row, unicode: bool) -> list[str]:
    size = human_bytes(row.bytes_downloaded) + (f"/{human_bytes(row.bytes_total)}" if row.bytes_total else "")
    segments = f"{row.segments_done}/{row.segments_total}" if row.segments_total else "-"
    if row.segments_failed:
        segments += f" !{row.segments_failed}"
    return [
        short_id(row.task_id),
        row.status.value,
        f"{bar(row.progress, _BAR, unicode=unicode)} {row.progress * 100:5.1f}%",
        size,
        f"{human_bytes(row.speed)}/s" if row.speed else "-",
        human_duration(row.eta) if row.eta else "-",
        segments,
        row.title,
    ]


def render(state: DashboardState, columns: int, lines: int, *, clock: str, unicode: bool = True) -> list[str]:
    """The screen as at most `lines` lines of at most `columns` characters each."""
    rows = state.ordered()
    active = [r for r in rows if r.status is TaskStatus.PROCESSING]
    speed = sum(r.speed for r in active)
    header = f"mediadl dashboard  {len(rows)} task(s), {len(active)} downloading"
    if speed:
        header += f" at {human_bytes(speed)}/s"
    header += f"  {clock}  (q quits)"
    out = [header, state.notice, _line([name for name, _, _ in _COLUMNS])]
    room = max(lines - len(out) - 1, 0)
    out.extend(_line(_cells(row, unicode)) for row in rows[:room])
    if len(rows) > room:
        out.append(f"... {len(rows) - room} more (enlarge the window)")
    return [line[:columns] for line in out[:lines]]
