"""The dashboard's model and drawing: rows of tasks updated by events, rendered to a screenful of lines."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

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
_BAR = 12


@dataclass(frozen=True)
class Row:
    task_id: str
    title: str
    status: TaskStatus
    progress: float
    bytes_downloaded: int
    bytes_total: int
    segments_done: int
    segments_failed: int
    segments_total: int
    speed: float
    eta: float
    # Rows are ordered by status, then newest first: creation time keeps that order still while events flow.
    created: datetime

    @classmethod
    def from_task(cls, task: Task) -> Row:
        return cls(
            task_id=task.id,
            title=task.liveroom_title or task.liveroom_id,
            status=task.status,
            progress=task.progress,
            bytes_downloaded=task.bytes_downloaded,
            bytes_total=task.bytes_total,
            segments_done=task.segments_done,
            segments_failed=task.segments_failed,
            segments_total=task.segments_total,
            speed=0.0,
            eta=0.0,
            created=task.create_time or datetime.now(UTC),
        )

    @classmethod
    def placeholder(cls, event: TaskEvent) -> Row:
        """A task first seen through an event; its title arrives later (DashboardState.fill_in)."""
        blank = cls(event.task_id, "…", event.status, 0.0, 0, 0, 0, 0, 0, 0.0, 0.0, datetime.now(UTC))
        return blank.with_event(event)

    def with_event(self, event: TaskEvent) -> Row:
        downloading = event.status is TaskStatus.PROCESSING
        return replace(
            self,
            status=event.status,
            progress=event.progress,
            bytes_downloaded=event.bytes_downloaded,
            bytes_total=event.bytes_total,
            segments_done=event.segments_done,
            segments_failed=event.segments_failed,
            segments_total=event.segments_total,
            speed=event.speed_bytes_per_second if downloading else 0.0,
            eta=event.eta_seconds if downloading else 0.0,
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
            self.rows[event.task_id] = Row.placeholder(event)
            return False
        self.rows[event.task_id] = row.with_event(event)
        return True

    def fill_in(self, task: Task) -> None:
        """Title and creation time of a task first seen through an event; its progress stays the event's."""
        row = self.rows.get(task.id)
        if row is not None:
            self.rows[task.id] = replace(
                row, title=task.liveroom_title or task.liveroom_id, created=task.create_time or row.created
            )

    def _wanted(self, status: TaskStatus) -> bool:
        return not self.statuses or status in self.statuses

    def ordered(self) -> list[Row]:
        return sorted(self.rows.values(), key=lambda row: (_RANK.get(row.status, 9), -row.created.timestamp()))


@dataclass(frozen=True)
class Column:
    header: str
    width: int
    right: bool = False


# In order on screen; when the terminal is narrow, columns are dropped from the end of _DROP_ORDER first.
_COLUMNS = [
    Column("ID", 8),
    Column("TITLE", 20),
    Column("STATUS", 17),
    Column("PROGRESS", _BAR + 9),
    Column("SIZE", 21),
    Column("SPEED", 11, right=True),
    Column("ETA", 7, right=True),
    Column("SEGMENTS", 10),
]
_DROP_ORDER = ["SIZE", "SEGMENTS", "ETA", "SPEED", "TITLE"]


def _visible(columns: int) -> list[Column]:
    shown = list(_COLUMNS)
    for name in _DROP_ORDER:
        if sum(c.width for c in shown) + 2 * (len(shown) - 1) <= columns:
            break
        shown = [c for c in shown if c.header != name]
    return shown


def _fit(text: str, column: Column) -> str:
    if len(text) > column.width:
        text = text[: column.width - 1] + "…"
    return text.rjust(column.width) if column.right else text.ljust(column.width)


def _cells(row: Row, unicode: bool) -> dict[str, str]:
    size = human_bytes(row.bytes_downloaded) + (f"/{human_bytes(row.bytes_total)}" if row.bytes_total else "")
    segments = f"{row.segments_done}/{row.segments_total}" if row.segments_total else "-"
    if row.segments_failed:
        segments += f" !{row.segments_failed}"
    return {
        "ID": short_id(row.task_id),
        "TITLE": row.title,
        "STATUS": row.status.value,
        "PROGRESS": f"{bar(row.progress, _BAR, unicode=unicode)} {row.progress * 100:5.1f}%",
        "SIZE": size,
        "SPEED": f"{human_bytes(row.speed)}/s" if row.speed else "-",
        "ETA": human_duration(row.eta) if row.eta else "-",
        "SEGMENTS": segments,
    }


def render(state: DashboardState, columns: int, lines: int, *, clock: str, unicode: bool = True) -> list[str]:
    """The screen as at most `lines` lines of at most `columns` characters each."""
    rows = state.ordered()
    active = [r for r in rows if r.status is TaskStatus.PROCESSING]
    speed = sum(r.speed for r in active)
    header = f"mediadl dashboard  {len(rows)} task(s), {len(active)} downloading"
    if speed:
        header += f" at {human_bytes(speed)}/s"
    header += f"  {clock}  (q quits)"
    shown = _visible(columns)
    out = [header, state.notice, "  ".join(_fit(c.header, c) for c in shown).rstrip()]
    room = max(lines - len(out) - 1, 0)
    for row in rows[:room]:
        cells = _cells(row, unicode)
        out.append("  ".join(_fit(cells[c.header], c) for c in shown).rstrip())
    if len(rows) > room:
        out.append(f"... {len(rows) - room} more (enlarge the window)")
    return [line[:columns] for line in out[:lines]]
