"""The media store seen from the engine: the local adapter (the work area is the storage) and the few steps
every job shares when the store is remote (publish a whole file, bring published files back). A file that
grows goes up with engine/files/growing.py.

The engine writes every file into the work area (STORAGE_DIR) as it always did: a temporary name, renamed
when whole. With a remote store (S3), a file is published the moment it becomes whole and final, and only
then recorded (a segment row becomes DONE after its upload), so a row never names a missing object.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from download_server.domain.models import Task
from download_server.domain.ports import MediaStore, MediaStoreError, PartUpload, StoredObject, UploadedPart
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.layout import PART_SUFFIX, Storage

T = TypeVar("T")
log = logging.getLogger(__name__)
# S3 refuses parts under 5 MiB (but the last); 8 MiB parts keep a 1 GiB file at 128 requests and the memory
# of one upload at one part.
PART_BYTES = 8 * 1024 * 1024


class WorkAreaMedia:
    """The local adapter: files stay where the engine wrote them (STORAGE_DIR), so `publish` has nothing to do.

    The other methods answer from the disk, so code written against the port works on both backends; the
    engine itself keeps its direct file-system paths when `remote` is False (byte-for-byte the old behaviour).
    """

    remote = False

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def describe(self) -> str:
        return f"local directory {self.root}"

    async def check(self) -> None:
        return None  # the directory is made when the first file is written, as it always was

    async def publish(self, key: str, path: Path, sha256: str = "") -> None:
        # A file written elsewhere is moved into the layout; one in place (the engine's case) stays.
        await asyncio.to_thread(_move, path, self._path(key))

    async def listing(self, prefix: str) -> dict[str, int]:
        return await asyncio.to_thread(self._listing, prefix)

    async def stat(self, key: str) -> StoredObject | None:
        try:
            size = (await asyncio.to_thread(self._path(key).stat)).st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        return StoredObject(key, size)

    async def fetch(self, key: str, path: Path) -> None:
        await asyncio.to_thread(_copy, self._path(key), path)

    async def read(self, key: str, offset: int, chunk: int) -> AsyncGenerator[bytes, None]:
        with await asyncio.to_thread(self._path(key).open, "rb") as handle:
            await asyncio.to_thread(handle.seek, offset)
            while data := await asyncio.to_thread(handle.read, chunk):
                yield data

    async def remove(self, prefixes: Sequence[str]) -> None:
        await asyncio.to_thread(self._remove, prefixes)

    async def start_upload(self, key: str) -> LocalPartUpload:
        return LocalPartUpload(key, self._path(key))

    async def open_uploads(self, key: str) -> list[PartUpload]:
        return []  # a part upload of the work area lives only as long as its process

    async def abort_uploads(self, prefixes: Sequence[str]) -> int:
        return 0  # nothing outlives the process that began it (see open_uploads)

    async def close(self) -> None:
        return None

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"not a key under the storage root: {key!r}")
        return path

    def _listing(self, prefix: str) -> dict[str, int]:
        folder = prefix.rpartition("/")[0]
        base = self._path(folder) if folder else self.root
        found: dict[str, int] = {}
        if not base.is_dir():
            return found
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                key = (Path(dirpath) / name).relative_to(self.root).as_posix()
                if key.startswith(prefix) and not name.endswith(PART_SUFFIX):
                    found[key] = (Path(dirpath) / name).stat().st_size
        return found

    def _remove(self, prefixes: Sequence[str]) -> None:
        for prefix in prefixes:
            if prefix.endswith("/"):
                shutil.rmtree(self._path(prefix.rstrip("/")), ignore_errors=True)
                continue
            folder, _, start = prefix.rpartition("/")
            base = self._path(folder)
            for candidate in base.glob(f"{start}*") if base.is_dir() else []:
                candidate.unlink(missing_ok=True)


class LocalPartUpload:
    """Parts copied into `<target>.upload-<id>`, renamed onto the target when complete (the port's semantics
    on a disk: nothing under the final name until the end)."""

    def __init__(self, key: str, target: Path) -> None:
        self.key = key
        self.upload_id = uuid.uuid4().hex
        self.parts: list[UploadedPart] = []
        self._target = target
        self._temp = target.with_name(f"{target.name}.upload-{self.upload_id}")

    async def send(self, path: Path, offset: int, size: int) -> None:
        await asyncio.to_thread(_append_range, path, offset, size, self._temp)
        self.parts.append(UploadedPart(len(self.parts) + 1, size, ""))

    async def complete(self) -> None:
        await asyncio.to_thread(_move, self._temp, self._target)

    async def abort(self) -> None:
        await asyncio.to_thread(self._temp.unlink, True)


async def translated(step: Awaitable[T]) -> T:
    """The store's failure as the failure record it becomes: an I/O error that may pass on a later attempt."""
    try:
        return await step
    except MediaStoreError as exc:
        raise FetchError(ErrorType.IO, f"the media store failed: {exc}", retryable=True) from exc


# What the jobs and the run share when the store is remote.
async def publish_file(storage: Storage, media: MediaStore, path: Path, sha256: str = "") -> None:
    """Publish a whole file of the work area under its layout key (nothing to do on the local backend);
    a store failure is a retryable FetchError (IO), recorded like any failed fetch."""
    if media.remote:
        await translated(media.publish(storage.key(path), path, sha256))


async def materialize(storage: Storage, media: MediaStore, task: Task) -> int:
    """Bring the task's published files into the work area where they are missing (a replica that took the
    task over, or a retry after the work area was cleared): a playlist, remux or thumbnail reads them there.
    Answers how many were fetched."""
    if not media.remote:
        return 0
    stored: dict[str, int] = {}
    for prefix in storage.task_prefixes(task):
        stored.update(await media.listing(prefix))
    # One trip to a thread for every size on disk, not one per object.
    missing = await asyncio.to_thread(lambda: [k for k, size in stored.items() if _size_of(storage.root / k) != size])
    for key in missing:
        await media.fetch(key, storage.root / key)
    return len(missing)


async def clear_work_area(storage: Storage, media: MediaStore, task: Task, leftovers: Callable[[], list[Path]]) -> None:
    """A remote store holds the finished recording: the work area lets go of the task's files (a retry
    brings back what it needs with `materialize`). Nothing to do on the local backend, where they are it."""
    if media.remote:
        await asyncio.to_thread(lambda: remove_local([*leftovers(), storage.thumbnail_path(task.id)]))


async def abort_open_uploads(storage: Storage, media: MediaStore, task: Task) -> None:
    """A task that is not resumed (ended, cancelled, failed, deleted) keeps no multipart upload open, billed
    and invisible, under its prefixes; a paused or stopped run leaves its upload to the next run. A store that
    is down leaves them to the bucket's lifecycle rule (docs/architecture.md)."""
    if not media.remote:
        return
    try:
        aborted = await media.abort_uploads(storage.task_prefixes(task))
    except MediaStoreError as exc:
        log.warning("open uploads could not be aborted: %s", exc, extra={"task_id": task.id})
        return
    if aborted:
        log.info("aborted %d open upload(s) of a task not resumed", aborted, extra={"task_id": task.id})


def remove_local(paths: Sequence[Path]) -> None:
    """Blocking: delete these files or folders of the work area; missing ones are fine."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        return -1


def _move(source: Path, target: Path) -> None:
    if source.resolve() == target:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _copy(source: Path, target: Path) -> None:
    if target.resolve() == source:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(target.name + PART_SUFFIX)
    shutil.copyfile(source, temp)
    os.replace(temp, target)


def _append_range(source: Path, offset: int, size: int, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as reader, target.open("ab") as writer:
        reader.seek(offset)
        left = size
        while left > 0 and (block := reader.read(min(left, 1024 * 1024))):
            writer.write(block)
            left -= len(block)
