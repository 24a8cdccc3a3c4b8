"""FlvSink: the one file of an FLV recording, fed by one connection after another (the fetcher drives it).

Only whole tags reach the file (a tag that has not arrived whole stays in memory, at most one tag of 16 MiB),
so whatever stops the run (pause, crash, a dropped connection) leaves a file that ends on a tag boundary, or
at worst in one partial tag that the next run cuts off. A VOD file is written byte for byte as the origin
sends it, so its size is also the offset a Range request continues from; a live stream goes through the
timeline (flv_timeline.py) and every connection starts over with a header of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.fence import DiskRunner
from download_server.engine.http.budget import RUN_RETRIES
from download_server.engine.jobs.flv_tags import NotFlv, TagReader
from download_server.engine.jobs.flv_timeline import RecordingLimit, Timeline

# Whole tags are written at least this often: a killed process loses at most about this much.
FLUSH_BYTES = 256 * 1024
FLUSH_SECONDS = 1.0


class FlvSink:
    def __init__(
        self,
        temp: Path,
        timeline: Timeline,
        *,
        writer: DiskRunner,
        size: int = 0,
        max_bytes: int = 0,
        on_write: Callable[[int], None] = lambda _n: None,
        on_gap: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.temp = temp
        self.timeline = timeline
        self.size = size  # bytes of whole tags, on disk or buffered
        self.live: bool | None = None  # None until the first answer shows it (no Content-Length: live)
        self.max_bytes = max_bytes  # DOWNLOAD_MAX_FILE_BYTES (0: none)
        # Wall time the recording lost the stream (a dropped connection, a pause, a crash): the next media is
        # a live gap of the time between. Wall time, so a gap across runs is measured from the file's mtime.
        self.gap_since: float | None = None
        self.written_at: float | None = None  # wall time an earlier run last wrote the file (its mtime)
        self.last_media = clock()  # monotonic time of the last media tag (the outage grace counts from it)
        self.connection_media = 0  # media tags of the current connection
        self._clock = clock
        self._writer = writer
        self._on_write = on_write
        self._on_gap = on_gap
        self._reader = TagReader()
        self._header_taken = False
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._flushed_at = clock()
        self._truncate = False
        self._fd: int | None = None
        self._inflight: asyncio.Future[None] | None = None
        # The file's hash as it is written, when this sink wrote it from its first byte (else hashed at the end).
        self._digest: hashlib._Hash | None = hashlib.sha256() if size == 0 else None

    def held(self) -> int:
        """A VOD file continues with a Range request from its size; a live stream never does."""
        return self.size if self.live is False else 0

    async def begin(self, *, keep: bool) -> None:
        await self.settle()
        self.timeline.new_connection()
        self._header_taken = False
        self.connection_media = 0
        if self.live or keep:
            # Live: a new connection brings its own header, dropped if the file has one already.
            self._reader = TagReader(header=bool(self.live) or self.size == 0)
            return
        # A VOD answer from the start (no Range, or the origin ignored it): the file starts over.
        self._reader = TagReader()
        self.timeline = Timeline(repair=False)
        self.size, self._truncate = 0, True
        self._digest = hashlib.sha256()

    async def write(self, chunk: bytes) -> None:
        try:
            tags = self._reader.feed(chunk)
        except NotFlv as exc:
            raise FetchError(ErrorType.BAD_CONTENT, str(exc)) from None
        if self._reader.header is not None and not self._header_taken:
            self._header_taken = True
            self._add(self.timeline.header(self._reader.header))
        for tag in tags:
            self._add(self.timeline.place(tag))
            if tag.is_media and not tag.sequence_header:
                self.last_media = self._clock()
                self.connection_media += 1
            if self.gap_since is not None and self.timeline.seamless is not None:
                # The connection's media joined: lost time unless it went on seamlessly after a replay.
                since, self.gap_since = self.gap_since, None
                if not self.timeline.seamless and self._on_gap is not None:
                    await self._on_gap(max(0.0, time.time() - since))
        self._on_write(len(chunk))  # after the tags: the counters then show what the file holds
        budget = RUN_RETRIES.get()
        refused = budget.quota_refusal() if budget is not None else None
        if refused is not None:
            raise refused  # DOWNLOAD_USER_QUOTA_BYTES: one long connection must stop too, not only the next
        if self._buffered >= FLUSH_BYTES or self._clock() - self._flushed_at >= FLUSH_SECONDS:
            await self._in_thread(self._flush)

    def _add(self, data: bytes) -> None:
        if not data:
            return
        if self.max_bytes and self.size + len(data) > self.max_bytes:
            if self.live:
                raise RecordingLimit(f"reached the {self.max_bytes} bytes of DOWNLOAD_MAX_FILE_BYTES")
            raise FetchError(ErrorType.TOO_LARGE, f"the body exceeds the {self.max_bytes} byte limit")
        self._buffer.append(data)
        self._buffered += len(data)
        self.size += len(data)

    @property
    def on_disk(self) -> int:
        """Bytes of whole tags written to the file (the rest of `size` waits in the buffer): what a part upload
        may read back. Exact between writes: a flush is awaited before `write` returns."""
        return self.size - self._buffered

    def sha256(self) -> str | None:
        """The whole file's SHA-256 when it was hashed while written (None: hash the file)."""
        return self._digest.hexdigest() if self._digest is not None else None

    async def commit(self) -> None:
        """The connection ended (EOF): everything whole is on disk; a live stream is lost from here on."""
        await self._in_thread(self._close)
        self._lost()

    def abort(self) -> None:
        """The connection failed or the run stops: keep every whole tag."""
        self._lost()
        if self._inflight is not None and not self._inflight.done():
            self._inflight.add_done_callback(lambda _: self._abort_now())
        else:
            self._abort_now()

    async def settle(self) -> None:
        """Wait for a write still running in its thread (and the clean-up an abort left after it)."""
        if self._inflight is not None and not self._inflight.done():
            await asyncio.shield(self._inflight)
            await asyncio.sleep(0)

    def _lost(self) -> None:
        if self.live and self.timeline.first is not None and self.gap_since is None:
            self.gap_since = time.time()

    # Blocking parts, in the disk writer's threads.
    def _flush(self) -> None:
        self._flushed_at = self._clock()
        if self._fd is None:
            flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if self._truncate else os.O_APPEND)
            self.temp.parent.mkdir(parents=True, exist_ok=True)
            self._fd, self._truncate = os.open(self.temp, flags, 0o666), False
        data, self._buffer, self._buffered = b"".join(self._buffer), [], 0
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            self._digest = None  # what reached the file is unknown now
            raise
        if self._digest is not None:
            self._digest.update(data)

    def _close(self) -> None:
        self._flush()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _abort_now(self) -> None:
        try:
            self._close()
        except OSError:
            pass  # what could not be written is lost like a crash would lose it: the next run scans the file
        finally:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)
            self._buffer, self._buffered = [], 0

    async def _in_thread(self, fn: Callable[[], None]) -> None:
        self._inflight = self._writer.run(fn)
        # Shielded: a cancelled run must not leave the thread and abort() touching the file at once.
        await asyncio.shield(self._inflight)
