"""Sinks for response bodies: in memory (small, bounded) or a file written off the event loop and renamed when whole."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.fence import DiskRunner
from download_server.engine.files.layout import temp_path

FLUSH_BYTES = 1024 * 1024


class Sink(Protocol):
    """Where a streamed body goes. The fetcher drives it once per attempt."""

    def held(self) -> int:
        """Bytes already stored that a Range request may continue from (0: start from the beginning)."""
        ...

    async def begin(self, *, keep: bool) -> None:
        """A body is about to arrive; keep=False drops whatever was held."""
        ...

    async def write(self, chunk: bytes) -> None: ...

    async def commit(self) -> None:
        """The whole body arrived: make it final."""
        ...

    def abort(self) -> None:
        """The attempt failed or was cancelled: keep only what a later Range request may continue."""
        ...


class BufferSink:
    """Collects a small body in memory (playlists, keys); bounded by the caller's max_bytes."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.body = b""

    def held(self) -> int:
        return 0

    async def begin(self, *, keep: bool) -> None:
        self._parts = []

    async def write(self, chunk: bytes) -> None:
        self._parts.append(chunk)

    async def commit(self) -> None:
        self.body = b"".join(self._parts)
        self._parts = []

    def abort(self) -> None:
        self._parts = []


class Transform(Protocol):
    """A streaming byte transform (AES-128-CBC decryption). finalize() raises ValueError on bad input."""

    def update(self, data: bytes) -> bytes: ...
    def finalize(self) -> bytes: ...


def sha256_of(path: Path) -> str:
    """Blocking: hash a file in 1 MiB reads (constant memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(FLUSH_BYTES):
            digest.update(block)
    return digest.hexdigest()


class FileSink:
    """Writes to `<final>.part`, renamed onto `final` by commit(), so a half file never counts as done.

    Chunks are buffered up to 1 MiB and written in a worker thread (the `writer`'s, else the loop's default
    pool): memory stays constant and the event loop never waits on the disk. A body under 1 MiB (a typical
    HLS segment) costs one hand-off in all: open, write, hash, close and rename happen in the same step.
    A resumable sink keeps its temp file when an attempt fails or the job stops, so the next attempt (or
    the next run) continues it with an HTTP Range request.
    """

    def __init__(
        self,
        final: Path,
        *,
        temp: Path | None = None,
        resumable: bool = False,
        transform: Callable[[], Transform] | None = None,
        on_write: Callable[[int], None] | None = None,
        writer: DiskRunner | None = None,
    ) -> None:
        if resumable and transform is not None:
            raise ValueError("a transformed body cannot be resumed mid-stream")
        self.final = final
        self.temp = temp or temp_path(final)
        self.size = 0
        self.sha256 = ""
        # Set (by a response check) to the size the finished file must have; commit refuses anything else.
        self.expected_size: int | None = None
        self._resumable = resumable
        self._make_transform = transform
        self._transform: Transform | None = None
        self._on_write = on_write
        # False when the held prefix is not the file's yet (a hole GrowingSink fills from the store, which
        # then hashes the whole): commit leaves sha256 empty instead of hashing the hole.
        self.hash_held = True
        self._writer = writer
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._fd: int | None = None
        self._append = False
        self._digest: hashlib._Hash | None = None
        self._inflight: asyncio.Future[None] | None = None

    def held(self) -> int:
        if not self._resumable:
            return 0
        try:
            return self.temp.stat().st_size
        except FileNotFoundError:
            return 0

    async def begin(self, *, keep: bool) -> None:
        await self._settle()
        self._close_file()
        self._buffer, self._buffered = [], 0
        self._transform = self._make_transform() if self._make_transform else None
        if keep:
            self.size = self.held()
            self._append, self._digest = True, None  # the held prefix is hashed again at commit
        else:
            self.size = 0
            self._append, self._digest = False, hashlib.sha256()
            if self._resumable:
                self.temp.unlink(missing_ok=True)

    async def write(self, chunk: bytes) -> None:
        data = self._transform.update(chunk) if self._transform else chunk
        if data:
            self._buffer.append(data)
            self._buffered += len(data)
            self.size += len(data)
        if self._on_write is not None:
            self._on_write(len(chunk))
        if self._buffered >= FLUSH_BYTES:
            await self._in_thread(self._flush)

    async def commit(self) -> None:
        if self.expected_size is not None and self.size != self.expected_size:
            # What we hold does not add up to the origin's file: start the next attempt from zero.
            self._resumable = False
            raise FetchError(
                ErrorType.SIZE_MISMATCH,
                f"the file has {self.size} bytes where the origin announced {self.expected_size}",
                retryable=True,
            )
        if self._transform is not None:
            try:
                tail = self._transform.finalize()
            except ValueError as exc:
                raise FetchError(ErrorType.DECRYPT, f"decryption failed: {exc}") from None
            if tail:
                self._buffer.append(tail)
                self.size += len(tail)
        await self._in_thread(self._finish)

    def abort(self) -> None:
        if self._inflight is not None and not self._inflight.done():
            # A write is still running in its thread: clean up after it, never beside it.
            self._inflight.add_done_callback(lambda _: self._abort_now())
        else:
            self._abort_now()

    # Blocking parts, run in a worker thread (or at abort, with at most one buffer left to write).
    # Plain os calls, not pathlib and buffered file objects: each step here is a syscall after which the
    # thread must win the GIL back from the event loop, so the fewer the better.
    def _flush(self) -> None:
        if self._fd is None:
            # Closed by _finish or abort, which may run in another call than this one.
            self._fd = _open_for_writing(self.temp, append=self._append)
        data, self._buffer, self._buffered = b"".join(self._buffer), [], 0
        if data:
            _write_all(self._fd, data)
            if self._digest is not None:
                self._digest.update(data)

    def _finish(self) -> None:
        self._flush()
        self._close_file()
        if self._digest is not None:
            self.sha256 = self._digest.hexdigest()
        else:
            self.sha256 = sha256_of(self.temp) if self.hash_held else ""
        try:
            os.replace(self.temp, self.final)
        except FileNotFoundError:  # the temp file was just closed: it is the final folder that is missing
            self.final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.temp, self.final)

    def _abort_now(self) -> None:
        try:
            if self._resumable and self._buffer:
                self._flush()  # keep every byte received: the next run asks only for the rest
        except OSError:
            pass
        finally:
            self._close_file()
            self._buffer, self._buffered = [], 0
            if not self._resumable:
                self.temp.unlink(missing_ok=True)

    def _close_file(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    async def _in_thread(self, fn: Callable[[], None]) -> None:
        if self._writer is not None:
            self._inflight = self._writer.run(fn)
        else:
            self._inflight = asyncio.get_running_loop().run_in_executor(None, fn)
        # Shielded: a cancelled job must not leave the thread and abort() touching the file at once.
        await asyncio.shield(self._inflight)

    async def _settle(self) -> None:
        if self._inflight is not None and not self._inflight.done():
            await asyncio.shield(self._inflight)


def _open_for_writing(path: Path, *, append: bool) -> int:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    try:
        return os.open(path, flags, 0o666)
    except FileNotFoundError:  # first file of its folder: create the folder only then, not on every open
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags, 0o666)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
