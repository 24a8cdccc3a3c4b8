"""Tasks, segments, failure records and videos (the state machine they follow: domain/lifecycle.py)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from download_server.domain.lifecycle import RULES, Action
from download_server.domain.lifecycle import TaskStatus as TaskStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


SWAPPABLE = RULES[Action.SWAP_RESOURCE].sources


class ResourceType(enum.StrEnum):
    HLS = "HLS"
    MP4 = "MP4"
    IMAGE = "IMAGE"
    FLV = "FLV"
    DASH = "DASH"


class OutputFormat(enum.StrEnum):
    """What an HLS task leaves: its own segments and playlist (HLS), plus one MP4 of the whole (MP4)."""

    HLS = "HLS"
    MP4 = "MP4"


# The error_type of media a live recording could not reach before it left the live window.
LIVE_GAP = "live_gap"


class FailureStatus(enum.StrEnum):
    PENDING = "PENDING"
    RETRYING = "RETRYING"
    RESOLVED = "RESOLVED"
    ABANDONED = "ABANDONED"

    @property
    def is_open(self) -> bool:
        return self in (FailureStatus.PENDING, FailureStatus.RETRYING)


class SegmentStatus(enum.StrEnum):
    PENDING = "PENDING"
    DONE = "DONE"
    FAILED = "FAILED"


@dataclass
class Task:
    id: str
    user_id: str
    video_id: str
    liveroom_id: str
    liveroom_title: str
    liveroom_url: str
    resource_url: str
    resource_type: ResourceType
    status: TaskStatus = TaskStatus.PENDING
    progress: float = 0.0
    bytes_downloaded: int = 0
    bytes_total: int = 0
    segments_total: int = 0
    segments_done: int = 0
    segments_failed: int = 0
    retry_count: int = 0
    last_error: str = ""
    create_time: datetime = field(default_factory=utcnow)
    update_time: datetime = field(default_factory=utcnow)
    complete_time: datetime | None = None
    # Set while the task waits (PENDING) for a free slot after a start, so a restart queues it again in order.
    queued_time: datetime | None = None
    # Runs in a row that ended in an unexpected exception (the task is quarantined at DOWNLOAD_QUARANTINE_AFTER),
    # and claims since a run last ended by itself (more than one: the runs before were interrupted).
    crash_count: int = 0
    reclaims: int = 0
    output_format: OutputFormat = OutputFormat.HLS
    max_duration_seconds: int = 0  # 0: no limit (live recordings only)
    # Set by the engine once the source shows no end: only a live recording may swap its URL while it runs.
    live: bool = False

    def apply(self, action: Action, *, now: datetime | None = None, outcome: TaskStatus | None = None) -> None:
        """Change status as `action` does (domain/lifecycle.py), or raise FailedPrecondition (TASK_STATE)."""
        action.check(self.status)
        if action is Action.DELETE:
            return  # the rows go; the status stays what it was until then
        if action is Action.SWAP_RESOURCE:
            self.update_time = now or utcnow()
            return  # the recording goes on: no status of its own
        self.status = action.target(outcome)
        self.update_time = now or utcnow()
        self.queued_time = None  # whoever queues it again sets it again
        if action is Action.RETRY:
            self.retry_count += 1
        if self.status.is_terminal:
            self.complete_time = self.update_time
        if action is Action.FINISH:
            self.recompute_progress()

    def change_resource(self, resource_url: str) -> bool:
        """A new resource_url: a live recording swaps it (a refreshed signed URL, taken at the next poll)
        and keeps everything; any other task starts over. True when the download state was reset."""
        if self.live and self.status in SWAPPABLE:
            self.apply(Action.SWAP_RESOURCE)
            self.resource_url = resource_url
            return False
        self.start_over(resource_url)
        return True

    def start_over(self, resource_url: str) -> None:
        """A new resource is a new download: nothing fetched for the old one counts any more."""
        self.apply(Action.CHANGE_RESOURCE)
        self.resource_url = resource_url
        self.progress = 0.0
        self.bytes_downloaded = self.bytes_total = 0
        self.segments_total = self.segments_done = self.segments_failed = 0
        self.retry_count = 0
        self.last_error = ""
        self.complete_time = None
        self.live = False  # the new source shows what it is when it is planned

    def recompute_progress(self) -> None:
        if self.segments_total > 0:
            self.progress = min(1.0, self.segments_done / self.segments_total)
        elif self.bytes_total > 0:
            self.progress = min(1.0, self.bytes_downloaded / self.bytes_total)
        if self.status is TaskStatus.COMPLETED:
            self.progress = 1.0


@dataclass(slots=True)  # a 100k-entry live window holds 100k of these: no per-object __dict__
class Segment:
    """One piece of a resource: an HLS media segment, or index 0 for a whole MP4/image file.

    Persisted per task so that pause, crash recovery and retry-only-what-failed read the same truth.
    """

    task_id: str
    index: int
    uri: str
    duration: float = 0.0
    byterange_offset: int | None = None
    byterange_length: int | None = None
    # AES-128 key URI and IV (hex) in force for this segment, if encrypted.
    key_uri: str | None = None
    key_iv: str | None = None
    # fMP4 init section (EXT-X-MAP) URI in force for this segment.
    init_uri: str | None = None
    discontinuity: bool = False
    status: SegmentStatus = SegmentStatus.PENDING
    bytes: int = 0
    attempts: int = 0
    sha256: str = ""


@dataclass
class Failure:
    id: str
    task_id: str
    segment_index: int
    segment_url: str
    error_type: str
    error_message: str
    http_status: int = 0
    attempts: int = 0
    status: FailureStatus = FailureStatus.PENDING
    create_time: datetime = field(default_factory=utcnow)
    update_time: datetime = field(default_factory=utcnow)


class VideoFormat(enum.StrEnum):
    HLS = "hls"
    DASH = "dash"
    FLV = "flv"
    MP4 = "mp4"
    IMAGE = "image"


class VideoFileKind(enum.StrEnum):
    """Which file of a recording ReadVideo streams."""

    MEDIA = "media"
    THUMBNAIL = "thumbnail"


@dataclass
class Video:
    id: str
    task_id: str
    video_id: str
    file_path: str
    file_size: int
    duration_seconds: float
    format: VideoFormat
    segment_count: int = 0
    sha256: str = ""
    thumbnail_path: str = ""  # JPEG, relative to the storage root; empty when there is no picture
    create_time: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class TaskEvent:
    """A progress event as streams carry it (the engine publishes, the broker fans out)."""

    task_id: str
    user_id: str
    status: TaskStatus
    progress: float
    bytes_downloaded: int
    bytes_total: int
    segments_done: int
    segments_failed: int
    segments_total: int
    speed_bytes_per_second: float = 0.0
    eta_seconds: float = 0.0
    message: str = ""
    event_time: datetime = field(default_factory=utcnow)

    @classmethod
    def of(cls, task: Task, *, speed: float = 0.0, eta: float = 0.0, message: str = "") -> TaskEvent:
        return cls(
            task_id=task.id,
            user_id=task.user_id,
            status=task.status,
            progress=task.progress,
            bytes_downloaded=task.bytes_downloaded,
            bytes_total=task.bytes_total,
            segments_done=task.segments_done,
            segments_failed=task.segments_failed,
            segments_total=task.segments_total,
            speed_bytes_per_second=speed,
            eta_seconds=eta,
            message=message,
        )

    def as_deleted(self) -> TaskEvent:
        """What a deleted task's watchers get: CANCELLED ends every stream watching it."""
        return replace(self, status=TaskStatus.CANCELLED, message="deleted")
