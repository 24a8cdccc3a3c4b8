"""Sinks for response bodies: in memory (small, bounded) or a file written off the event loop and renamed when whole."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

from download_server.adapters.storage import temp_path
from download_server.engine.errors import ErrorType, FetchError

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

    Chunks are buffered up to 1 MiB and written in a worker thread: memory stays constant and the event
    loop never waits on the disk. A resumable sink keeps its temp file when an attempt fails or the job
    stops, so the next attempt (or the next run) continues it with an HTTP Range request.
    """

    def __init__(
        self,
        final: Path,
        *,
        temp: Path | None = None,
        resumable: bool = False,
        transform: Callable[[], Transform] | None = None,
        on_write: Callable[[int], None] | None = None,
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
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._file: BinaryIO | None = None
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
    def _flush(self) -> None:
        if self._file is None:
            self.temp.parent.mkdir(parents=True, exist_ok=True)
            # Closed by _finish or abort, which may run in another call than this one.
            self._file = self.temp.open("ab") if self._append else self.temp.open("wb")
        data, self._buffer, self._buffered = b"".join(self._buffer), [], 0
        if data:
            self._file.write(data)
            if self._digest is not None:
                self._digest.update(data)

    def _finish(self) -> None:
        self._flush()
        self._close_file()
        self.sha256 = self._digest.hexdigest() if self._digest is not None else sha256_of(self.temp)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.temp, self.final)

    def _abort_now(self) -> None:
        try:
            if self._resumable:
                self._flush()  # keep every byte received: the next run asks only for the rest
        except OSError:
            pass
        finally:
            self._close_file()
            self._buffer, self._buffered = [], 0
            if not self._resumable:
                self.temp.unlink(missing_ok=True)

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def _in_thread(self, fn: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        self._inflight = loop.run_in_executor(None, fn)
        # Shielded: a cancelled job must not leave the thread and abort() touching the file at once.
        await asyncio.shield(self._inflight)

    async def _settle(self) -> None:
        if self._inflight is not None and not self._inflight.done():
            await asyncio.shield(self._inflight)
