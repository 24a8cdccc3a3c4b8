"""Files that grow in the work area go up as one multipart upload while they grow: GrowingSink for a file
written from its start (an MP4 on one connection), PrefixUpload for one whose contiguous prefix grows while
pieces land out of order (a ranged download). A run on any replica continues the upload an earlier run left.

Continuing on another replica. S3 does not let anyone read the parts of an unfinished upload, and the replica
that takes a task over has no `.part` file. What it does have is the open upload: its parts, in order and
each of a whole part size, are the file's first `sent` bytes. So the new run makes a sparse `.part` of
exactly `sent` bytes (a hole: no disk, no memory), lets the fetcher continue it with
`Range: bytes=<sent>-` as it continues any `.part`, uploads the following parts from what arrives, and
completes the upload. Only then can the head be read back: it is fetched from the completed object into the
hole (one ranged GET of `sent` bytes), and the whole file is hashed, so the recorded SHA-256 is that of the
bytes the store holds. The origin serves only what no earlier run uploaded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from download_server.domain.ports import MediaStore, MediaStoreError, PartUpload
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.layout import head_marker
from download_server.engine.files.objects import PART_BYTES, translated
from download_server.engine.files.sinks import FLUSH_BYTES, FileSink, sha256_of


class GrowingSink:
    """A resumable FileSink whose contiguous prefix goes up as parts of one multipart upload while it grows
    (the MP4 job with a remote store). Parts are read back from the work area, so memory stays one read.

    Nothing is visible under the key until `finish` completes the upload. A pause or a stop leaves the
    upload open with the `.part` file, and the next run continues both (`resume`), on this replica or on
    another one (then from the last whole part, see the module's doc). An upload that cannot be continued
    (parts out of order or of another size, a second upload of the same key) is aborted.
    """

    def __init__(self, inner: FileSink, media: MediaStore, key: str, part_bytes: int = PART_BYTES) -> None:
        self.inner = inner
        self._media = media
        self._key = key
        self._part = part_bytes
        self._parts = PartsUpload(media, key, part_bytes)
        self.hole = 0  # bytes at the head of the work file that are only in the store (another run's parts)
        self._marker = head_marker(inner.temp)

    async def resume(self) -> None:
        """Adopt the open upload of this key that holds the most whole parts; abort every other one. When the
        work area holds less than the upload (another replica's run), the `.part` becomes a hole of its size.
        A `.part` left hollow by an earlier run is kept only with an upload that still covers its hole."""
        await self._parts.adopt_best()
        sent = self._parts.sent
        hole = await asyncio.to_thread(_hole_of, self._marker)
        if hole and hole > sent:
            await self._discard_local()  # its head is nowhere any more (the upload was aborted): from zero
            hole = 0
        if self._parts.upload is None:
            return
        if await asyncio.to_thread(self.inner.held) < sent:
            # What the work area holds (nothing, or a shorter file another run left) is not what was uploaded.
            await asyncio.to_thread(_hollow, self.inner.temp, self._marker, sent)
            hole = sent
        self.hole = hole
        self.inner.hash_held = not hole  # finish hashes the whole once the hole is filled

    @property
    def sent(self) -> int:
        """Bytes of the file already uploaded as parts."""
        return self._parts.sent

    # The Sink protocol (engine/files/sinks.py)
    def held(self) -> int:
        return self.inner.held()

    async def begin(self, *, keep: bool) -> None:
        await self.inner.begin(keep=keep)
        if keep and self.hole and self.inner.size < self.sent:
            # The .part shrank below the parts it continues (not by our hand): its head cannot be trusted.
            raise FetchError(ErrorType.IO, "the work file no longer holds the uploaded parts' length")
        if not keep or self.inner.size < self.sent:
            await self.abort_upload()  # the parts no longer match the file: start the upload over

    async def write(self, chunk: bytes) -> None:
        await self.inner.write(chunk)
        # The sink flushes every FLUSH_BYTES, so this much more than a part is surely on disk by now.
        while self.inner.size - self.sent >= self._part + FLUSH_BYTES:
            await self._parts.send(self.inner.temp, self._part)

    async def commit(self) -> None:
        await self.inner.commit()

    def abort(self) -> None:
        self.inner.abort()

    # After the body
    async def finish(self, sha256: str) -> None:
        """The file is whole in the work area: upload the rest and complete (a small file: one PUT). A file
        continued after another run's parts gets its head back from the store, and its SHA-256 from all of it
        (the sink could not hash the hole)."""
        final = self.inner.final
        await self._parts.finish(final, self.inner.size, sha256)
        if self.hole:  # (only with an adopted upload, so the file went up as its parts)
            try:
                await self._fill_hole(final)
            except FetchError:
                await asyncio.to_thread(final.unlink, True)  # never a local file with a hole for a head
                raise
            self.inner.sha256 = await asyncio.to_thread(sha256_of, final)
            await asyncio.to_thread(self._marker.unlink, True)
            self.hole, self.inner.hash_held = 0, True

    async def abort_upload(self) -> None:
        """Abort the upload (a failed download: no parts left billed and invisible). A `.part` whose head was
        in those parts is discarded with it: nothing else holds that head."""
        if self.hole:
            await self._discard_local()
        await self._parts.abort()

    async def _discard_local(self) -> None:
        await self.inner.begin(keep=False)  # waits for a write in flight, then removes the .part
        await asyncio.to_thread(self._marker.unlink, True)
        self.hole, self.inner.hash_held = 0, True

    async def _fill_hole(self, path: Path) -> None:
        """Write the completed object's first `hole` bytes over the hole (1 MiB reads, one ranged GET)."""
        handle = await asyncio.to_thread(path.open, "r+b")
        left = self.hole
        try:
            reading = self._media.read(self._key, 0, FLUSH_BYTES)
            try:
                async for data in reading:
                    piece = data[:left]
                    await asyncio.to_thread(handle.write, piece)
                    left -= len(piece)
                    if left <= 0:
                        break
            finally:
                with contextlib.suppress(MediaStoreError):
                    await reading.aclose()  # the rest of the object is not wanted: drop the connection
        except MediaStoreError as exc:
            raise FetchError(ErrorType.IO, f"the media store failed: {exc}", retryable=True) from exc
        finally:
            await asyncio.to_thread(handle.close)
        if left > 0:
            raise FetchError(ErrorType.IO, f"the stored object lacks {left} bytes of its head", retryable=True)


def _hollow(temp: Path, marker: Path, size: int) -> None:
    """Blocking: `temp` becomes a sparse file of `size` bytes (its content the store's, fetched at the end),
    the marker written first, so that no crash leaves a hollow file unmarked."""
    temp.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(size))
    with temp.open("wb") as handle:
        handle.truncate(size)


def _hole_of(marker: Path) -> int:
    """Blocking: the size of the hole the marker records (0: no marker, the `.part` is all data)."""
    try:
        text = marker.read_text().strip()
    except FileNotFoundError:
        return 0
    return int(text) if text.isdigit() else 1 << 62  # unreadable: treated as a hole no upload covers


class PrefixUpload:
    """The parts of a file whose contiguous prefix grows while pieces land out of order (a ranged download's
    work file, jobs/ranged.py): each whole part of the prefix goes up as soon as it is on disk, and the rest
    once the file is whole. A replica that takes the task over continues after the last part as for a
    one-connection MP4 (GrowingSink.resume); this replica, after a stop, adopts the parts its prefix holds."""

    def __init__(self, media: MediaStore, key: str, part_bytes: int = PART_BYTES) -> None:
        self._part = part_bytes
        self._parts = PartsUpload(media, key, part_bytes)

    @property
    def sent(self) -> int:
        return self._parts.sent

    async def resume(self, prefix: int) -> None:
        """Adopt the open upload whose whole parts the prefix on disk still holds; abort every other one."""
        await self._parts.adopt_best(lambda upload: len(upload.parts) * self._part <= prefix)

    async def follow(self, path: Path, prefix: Callable[[], int], total: int, progressed: asyncio.Event) -> None:
        """Send each whole part of the prefix as it grows (one part in flight), until the prefix is the file."""
        while True:
            while prefix() - self.sent >= self._part and self.sent + self._part < total:
                await self._parts.send(path, self._part)
            if prefix() >= total:
                return
            await progressed.wait()
            progressed.clear()

    async def finish(self, path: Path, size: int) -> None:
        """The file is whole at `path`: the rest goes up and the upload completes (nothing sent: one publish)."""
        await self._parts.finish(path, size)

    async def abort(self) -> None:
        await self._parts.abort()


class PartsUpload:
    """How a file's prefix goes up as the parts of one key's multipart upload, whoever decides when a part is
    due (GrowingSink, PrefixUpload, the FLV recording's FlvUpload): the upload, started with the first part
    or adopted from an earlier run, and the bytes sent; the last part and the completion (or, with no part
    sent, one publish); an abort."""

    def __init__(self, media: MediaStore, key: str, part_bytes: int = PART_BYTES) -> None:
        self._media = media
        self._key = key
        self._part = part_bytes
        self.upload: PartUpload | None = None
        self.sent = 0  # bytes of the file already uploaded as parts

    async def adopt_best(self, fits: Callable[[PartUpload], bool] = lambda upload: True) -> None:
        """Adopt, of the key's open uploads this code can continue that `fits` accepts, the one with the most
        parts; abort every other one."""
        uploads = await translated(self._media.open_uploads(self._key))
        candidates = (u for u in uploads if _continuable(u, self._part) and fits(u))
        adopted = max(candidates, key=lambda u: len(u.parts), default=None)
        for upload in uploads:
            if upload is not adopted:
                await translated(upload.abort())
        if adopted is not None:
            self.adopt(adopted)

    def adopt(self, upload: PartUpload) -> None:
        """Continue `upload`: its parts are the file's first bytes."""
        self.upload, self.sent = upload, sum(part.size for part in upload.parts)

    async def send(self, path: Path, size: int) -> None:
        """The next `size` bytes of `path` (from `sent`) as the next part, read from the file."""
        if self.upload is None:
            self.upload = await translated(self._media.start_upload(self._key))
        await translated(self.upload.send(path, self.sent, size))
        self.sent += size

    async def finish(self, path: Path, size: int, sha256: str = "") -> None:
        """`path` is whole (`size` bytes): the rest as the last part and complete, or one publish when no part
        went up."""
        if self.upload is None:
            await translated(self._media.publish(self._key, path, sha256))
            return
        if size > self.sent or not self.upload.parts:
            await self.send(path, size - self.sent)
        await translated(self.upload.complete())
        self.upload = None

    async def abort(self) -> None:
        upload, self.upload, self.sent = self.upload, None, 0
        if upload is not None:
            await translated(asyncio.shield(upload.abort()))


def _continuable(upload: PartUpload, part: int) -> bool:
    """Parts 1..k in order, each of a whole part size: an upload this code began, continuable after part k."""
    numbered = all(p.number == n for n, p in enumerate(upload.parts, 1))
    return bool(upload.parts) and numbered and all(p.size == part for p in upload.parts)
