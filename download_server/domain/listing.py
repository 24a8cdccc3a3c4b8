"""What a list query asks for (filters, order, keyset cursor) and what a page holds, independent of SQL."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from download_server.domain.models import FailureStatus, TaskStatus

T = TypeVar("T")


class SortField(enum.StrEnum):
    CREATE_TIME = "create_time"
    UPDATE_TIME = "update_time"


@dataclass(frozen=True)
class Ordering:
    """Sort by a time column, ties broken by id in the same direction, so the order is total."""

    field: SortField = SortField.CREATE_TIME
    descending: bool = True

    def __str__(self) -> str:
        return f"{self.field.value} desc" if self.descending else self.field.value


@dataclass(frozen=True)
class Cursor:
    """The sort key and id of the last row a page showed; the next page starts strictly after it."""

    time: datetime
    id: str


@dataclass(frozen=True)
class TaskQuery:
    user_id: str
    statuses: tuple[TaskStatus, ...] = ()
    ordering: Ordering = Ordering()


@dataclass(frozen=True)
class FailureQuery:
    user_id: str
    task_id: str | None = None
    statuses: tuple[FailureStatus, ...] = ()


@dataclass(frozen=True)
class VideoQuery:
    user_id: str
    task_id: str


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows, where the next page starts (None on the last page), how many rows match in all."""

    items: list[T]
    next_cursor: Cursor | None
    total_size: int
