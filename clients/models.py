"""The client's own value types: frozen dataclasses and enums that mirror the API without any protobuf."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class OutputFormat(StrEnum):
    """What an HLS task leaves: its segments and playlist (``HLS``), plus one MP4 of the whole (``MP4``)."""

    UNSPECIFIED = "UNSPECIFIED"
    HLS = "HLS"
    MP4 = "MP4"


class ResourceType(StrEnum):
    """What a task downloads. The value is the API name without its prefix (``RESOURCE_TYPE_HLS`` -> ``"HLS"``)."""

    UNSPECIFIED = "UNSPECIFIED"
    HLS = "HLS"
    MP4 = "MP4"
    IMAGE = "IMAGE"
    FLV = "FLV"
    DASH = "DASH"


class TaskStatus(StrEnum):
    """Where a task is in its life. ``TaskStatus.COMPLETED.is_terminal`` -> True."""

    UNSPECIFIED = "UNSPECIFIED"
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    PARTIAL_COMPLETED = "PARTIAL_COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True for the states a download does not leave by itself."""
        return self in _TERMINAL

    @property
    def ends_stream(self) -> bool:
        """True for the states after which StartTask, RetryTask and WatchTask end (terminal or PAUSED)."""
        return self in _TERMINAL or self is TaskStatus.PAUSED


_TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.PARTIAL_COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class FailureStatus(StrEnum):
    """State of one failure record."""

    UNSPECIFIED = "UNSPECIFIED"
    PENDING = "PENDING"
    RETRYING = "RETRYING"
    RESOLVED = "RESOLVED"
    ABANDONED = "ABANDONED"


@dataclass(frozen=True)
class User:
    """A public profile (never a password or hash)."""

    id: str
    email: str
    username: str
    full_name: str
    bio: str
    avatar_url: str
    is_active: bool
    is_superuser: bool
    create_time: datetime | None
    update_time: datetime | None


@dataclass(frozen=True)
class Task:
    """One download task. ``bytes_total`` is 0 while unknown; ``complete_time`` is None until it finishes."""

    id: str
    user_id: str
    video_id: str
    liveroom_id: str
    liveroom_title: str
    liveroom_url: str
    resource_url: str
    resource_type: ResourceType
    status: TaskStatus
    progress: float
    bytes_downloaded: int
    bytes_total: int
    segments_total: int
    segments_done: int
    segments_failed: int
    retry_count: int
    last_error: str
    create_time: datetime | None
    update_time: datetime | None
    complete_time: datetime | None
    output_format: OutputFormat = OutputFormat.HLS
    max_duration_seconds: int = 0  # a live recording ends cleanly after this much media; 0: no limit


@dataclass(frozen=True)
class TaskEvent:
    """A progress update from StartTask, RetryTask, WatchTask or WatchTasks. ``eta_seconds`` is 0 when unknown."""

    task_id: str
    status: TaskStatus
    progress: float
    bytes_downloaded: int
    bytes_total: int
    segments_done: int
    segments_failed: int
    segments_total: int
    speed_bytes_per_second: float
    eta_seconds: float
    message: str
    event_time: datetime | None


@dataclass(frozen=True)
class Failure:
    """A resource or segment that could not be fetched (``segment_index`` -1: the whole resource)."""

    id: str
    task_id: str
    segment_index: int
    segment_url: str
    error_type: str
    error_message: str
    http_status: int
    attempts: int
    status: FailureStatus
    create_time: datetime | None
    update_time: datetime | None


@dataclass(frozen=True)
class Video:
    """What a finished download produced; ``video_id`` is the task's business id."""

    id: str
    task_id: str
    video_id: str
    file_path: str
    file_size: int
    duration_seconds: float
    format: str
    segment_count: int
    sha256: str
    create_time: datetime | None
    thumbnail_path: str = ""  # JPEG, relative to the server's storage root; empty when there is no picture


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list. Pass ``next_page_token`` back to get the next; it is "" on the last page.

    >>> page = await client.list_tasks(page_size=50)  # doctest: +SKIP
    >>> for task in page: ...                         # a Page iterates over its items
    """

    items: tuple[T, ...]
    next_page_token: str
    total_size: int

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def is_last(self) -> bool:
        return not self.next_page_token
