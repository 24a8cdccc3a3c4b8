"""Every port of the download server: what the use cases and the engine need from the outside.

Adapters (SQL, PostgreSQL NOTIFY, the file system) implement these; the use cases and the engine see only
these protocols, so neither imports an adapter and adapters import nothing above the domain.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

from download_server.domain.leases import Claim, Decision, Lease, LeaseState, Queue
from download_server.domain.lifecycle import Action
from download_server.domain.models import (
    Failure,
    FailureStatus,
    Segment,
    Task,
    TaskEvent,
    TaskStatus,
    Video,
    VideoFileKind,
)

T = TypeVar("T")

# Refuses (raises domain.urls.UrlRefused) a URL the server must not fetch; see engine/http/url_policy.py.
UrlChecker = Callable[[str], Awaitable[None]]


class TaskStore(Protocol):
    """Async persistence for tasks, segments, failures and videos.

    Every method is one transaction. `user_id`, where taken, scopes the lookup: another user's row is
    reported exactly like a missing one (NotFound). The SQL implementation runs each call in the
    database thread pool, so the event loop never waits on SQL.
    """

    # Tasks
    async def get_task(self, task_id: str, user_id: str | None = None) -> Task: ...
    async def save_task(self, task: Task) -> None: ...
    async def tasks_with_status(self, statuses: Sequence[TaskStatus]) -> list[Task]: ...

    # Segments (one row per segment; index 0 is the whole file for MP4 and images)
    async def list_segments(self, task_id: str) -> list[Segment]: ...
    async def pending_segments(self, task_id: str, after_index: int, limit: int) -> list[Segment]:
        """Up to `limit` PENDING segments with an index above `after_index`, in index order (a run reads its
        catch-up a slice at a time rather than holding every pending row of a long live window)."""
        ...

    async def add_segments(self, task_id: str, segments: Sequence[Segment]) -> None: ...
    async def save_progress(self, task: Task, segments: Sequence[Segment]) -> None:
        """Write the task's counters and the given segments' states together (the engine's throttled flush)."""
        ...

    # Failures
    async def add_failure(self, failure: Failure) -> Failure: ...
    async def get_failure(self, failure_id: str, user_id: str | None = None) -> Failure: ...
    async def save_failure(self, failure: Failure) -> None: ...
    async def task_failures(self, task_id: str, statuses: Sequence[FailureStatus] = ()) -> list[Failure]: ...

    # Videos
    async def user_bytes(self, user_id: str) -> int:
        """What the user's tasks hold, counted in the database (the quota's measure)."""
        ...

    async def save_video(self, video: Video) -> Video:
        """Insert or replace the task's video record (one per task)."""
        ...


@dataclass(frozen=True)
class DeletedTask:
    """What a deletion removed, so the caller can clean up the files the rows pointed at."""

    task: Task
    video: Video | None


class Scheduler(Protocol):
    """Owns running downloads (engine/scheduling/scheduler.py). The use cases check ownership first,
    then ask it to act; it never sees a user id.

    Each action performs the task's state change (and persists it) before it returns, raising
    FailedPrecondition if the state does not allow it. `start` on a running or queued task does nothing
    (the caller attaches to it); `delete` checks the owner before it stops anything; `retry_failure` returns
    the record after its one attempt. Watches are async generators: the current state at once, then events.
    """

    async def start(self, task_id: str) -> None: ...
    async def pause(self, task_id: str) -> None: ...
    async def resume(self, task_id: str) -> None: ...
    async def cancel(self, task_id: str) -> None: ...
    async def delete(self, task_id: str, user_id: str) -> DeletedTask:
        """Stop whatever runs the task (here or on another replica), then remove its rows in one transaction."""
        ...

    async def retry(self, task_id: str) -> None: ...
    async def retry_failure(self, failure_id: str) -> Failure: ...

    def watch(self, task_id: str, load: Callable[[], Awaitable[Task]]) -> AsyncGenerator[TaskEvent, None]:
        """Until an event shows a terminal state or PAUSED. `load` reads the task (and may raise NotFound)."""
        ...

    def watch_user(
        self, user_id: str, load: Callable[[], Awaitable[list[Task]]], statuses: Iterable[TaskStatus] = ()
    ) -> AsyncGenerator[TaskEvent, None]:
        """Every task `load` returns, then every event of the user's tasks (in `statuses`, if any); endless."""
        ...


class TaskFiles(Protocol):
    """The files a task left under the storage directory."""

    async def remove(self, task: Task, video: Video | None) -> None: ...

    def owned(self, task: Task, file_path: str) -> str | None:
        """Blocking (resolves symlinks). The path relative to the storage root if it is one of the task's own
        files (inside its folder, or a file named for it), else None."""
        ...

    def relative(self, file_path: str) -> str:
        """A stored path as responses show it: relative to the storage root, never absolute."""
        ...


@dataclass(frozen=True)
class FileChunk:
    """A piece of a recording's file as ReadVideo streams it."""

    data: bytes
    offset: int  # where `data` starts in the file
    total_size: int
    content_type: str


class RecordingFiles(Protocol):
    """Reading back what a download produced, never a byte outside the recording (ReadVideo)."""

    def read(self, video: Video, kind: VideoFileKind, path: str, offset: int) -> AsyncGenerator[FileChunk, None]:
        """Chunks from `offset`; raises (at the first step) NotFound, InvalidArgument or FailedPrecondition."""
        ...


class Leases(Protocol):
    """Lease persistence. Every method is one transaction; `act` holds the task's row lock while `decide` runs."""

    @property
    def shared(self) -> bool:
        """True when other processes may hold leases on the same database (PostgreSQL)."""
        ...

    async def act(self, task_id: str, decide: Callable[[Task, Lease, datetime], T]) -> T:
        """Lock the task, let `decide` change it and its lease (raising refuses: nothing is written), write both."""
        ...

    async def remove(
        self, task_id: str, user_id: str, decide: Callable[[Task, Lease, datetime], Decision]
    ) -> tuple[Decision, DeletedTask | None]:
        """Like `act` on the user's own task (NotFound otherwise); a REMOVE decision deletes its rows in the same
        transaction and answers what they held."""
        ...

    async def claim(
        self, owner: str, limit: int, seconds: float, exclude: Collection[str], per_user: int = 0
    ) -> list[Claim]:
        """Claim up to `limit` runnable tasks, round-robin across users (domain.leases.fair_pick), no user past
        `per_user` running tasks (0: no cap). Strict across replicas: claims and takes take turns."""
        ...

    async def renew(self, held: Mapping[str, str], seconds: float) -> dict[str, Action | None]:
        """Extend the leases `held` (task id -> token); answer those still held, with any command left for them."""
        ...

    async def release(self, task_id: str, token: str) -> None:
        """End a lease (if still held with `token`); commands and retry targets go once the task left PROCESSING."""
        ...

    async def inspect(self, task_id: str) -> LeaseState | None: ...

    async def queue(self, limit: int, per_user: int = 0) -> Queue:
        """The first `limit` queued tasks, the total, and which of their users are at `per_user`."""
        ...

    async def position(self, task_id: str) -> tuple[int, int] | None:
        """(1-based place, total) of a queued task; None if it is not queued."""
        ...

    async def runnable(self) -> int: ...

    async def reset(self, owner: str | None) -> int:
        """End the leases of `owner` (None: every lease): only for a database no other process uses."""
        ...


class EventSink(Protocol):
    """Where a relay delivers other replicas' events (the engine's broker)."""

    def deliver(self, event: TaskEvent) -> None: ...
    def latest(self, task_id: str) -> TaskEvent | None: ...
    def unsettled(self, limit: int = 5000) -> list[str]: ...


class Relay(Protocol):
    """Signals between replicas: progress events, "work available" nudges, and commands for a lease holder."""

    def bind(self, broker: EventSink, on_work: Callable[[], None], on_command: Callable[[str], None]) -> None:
        """Where signals from other replicas go: events to `broker`, nudges and commands to the scheduler."""
        ...

    def send_event(self, event: TaskEvent) -> None: ...
    def work_available(self) -> None: ...
    def command(self, task_id: str) -> None: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...


class MediaStoreError(Exception):
    """The media store could not do what was asked (unreachable, refused): the adapter's own errors become
    this, so the engine can record a failure that may pass later instead of crashing the run."""


@dataclass(frozen=True)
class StoredObject:
    """One finished file in the media store: its key (the path relative to the storage root), size, and the
    SHA-256 recorded when it was published ("" when the store does not know it)."""

    key: str
    size: int
    sha256: str = ""


@dataclass(frozen=True)
class UploadedPart:
    number: int  # 1-based, as S3 numbers parts
    size: int
    etag: str


class PartUpload(Protocol):
    """A file that grows (an MP4 in progress) sent in parts as its prefix becomes final; nothing is visible
    under the key until `complete`, and `abort` leaves nothing behind."""

    key: str
    upload_id: str
    parts: list[UploadedPart]

    async def send(self, path: Path, offset: int, size: int) -> None:
        """Upload bytes [offset, offset + size) of the local file `path` as the next part."""
        ...

    async def complete(self) -> None: ...
    async def abort(self) -> None: ...


class MediaStore(Protocol):
    """Where a download's finished files live (engine/files/objects.py: the work area itself; adapters/
    s3_media.py: an S3 bucket). The engine always writes into the local work area (STORAGE_DIR) and calls
    `publish` when a file is whole and final; everything else here reads or removes what was published.

    Keys are the API.md layout's relative paths ("hls/<task_id>/ts/3.ts"). `remote` is False for the local
    store: there the work area *is* the storage, publishing costs nothing and the engine keeps reading the
    disk exactly as it always did.
    """

    @property
    def remote(self) -> bool: ...

    def describe(self) -> str:
        """Where the media goes, for the start-up log line (never a secret)."""
        ...

    async def check(self) -> None:
        """Raise MediaStoreError if the store cannot be used (no such bucket, refused credentials): at start-up."""
        ...

    async def publish(self, key: str, path: Path, sha256: str = "") -> None:
        """Make the whole local file `path` visible under `key` (at once, never half of it)."""
        ...

    async def listing(self, prefix: str) -> dict[str, int]:
        """Every published key starting with `prefix`, with its size."""
        ...

    async def stat(self, key: str) -> StoredObject | None: ...

    async def fetch(self, key: str, path: Path) -> None:
        """Copy the object to the local file `path` (written under a temporary name, renamed when whole)."""
        ...

    def read(self, key: str, offset: int, chunk: int) -> AsyncGenerator[bytes, None]:
        """The object from `offset` on, in pieces of at most `chunk` bytes (one ranged GET, streamed)."""
        ...

    async def remove(self, prefixes: Sequence[str]) -> None:
        """Delete every object under these prefixes, and abort any part upload under them."""
        ...

    async def start_upload(self, key: str) -> PartUpload: ...

    async def open_uploads(self, key: str) -> list[PartUpload]:
        """Part uploads begun for exactly `key` and never completed nor aborted (a crash, a pause)."""
        ...

    async def abort_uploads(self, prefixes: Sequence[str]) -> int:
        """Abort every part upload under these prefixes (objects stay); answers how many were open."""
        ...

    async def close(self) -> None: ...
