"""FlvUpload: with a remote store, the FLV recording's work file goes up as the parts of one multipart upload
while it grows, and the upload is completed when the recording is over, before its row is recorded DONE.

Parts are read back from the work file (`.flv.part`), never buffered: memory stays one FileSlice whatever
the recording's length. Only bytes the FlvSink has flushed are sent, so every part is a prefix of the file.
A part the store refuses is tried again later (backing off) while the recording goes on into the work file:
a store outage costs disk, not media; only the end of the recording needs the store.
A pause, a shutdown or a crash leaves the upload open beside the `.part` file; the next run on the same
work area adopts it (its parts are a prefix of what the file still holds). Another replica cannot: S3 has no
way to read an open upload's parts back, and an FLV continues by appending to its file, so that upload is
aborted and the media it held is a live gap (docs/architecture.md, "FLV and DASH on S3").
"""

from __future__ import annotations

import contextlib
import logging
import time

from download_server.domain.ports import MediaStore
from download_server.engine.failures import FetchError
from download_server.engine.files.growing import PartsUpload
from download_server.engine.files.objects import PART_BYTES, translated
from download_server.engine.jobs.flv_sink import FlvSink

log = logging.getLogger(__name__)
RETRY_MAX_SECONDS = 30.0  # between tries of a part while the store is down (the recording goes on meanwhile)


class FlvUpload:
    """Wraps the FlvSink for the fetcher (the Sink protocol) and sends each whole part as soon as it is on disk."""

    def __init__(self, sink: FlvSink, media: MediaStore, key: str, part_bytes: int = PART_BYTES) -> None:
        self.sink = sink
        self._media = media
        self._key = key
        self._part = part_bytes
        self._parts = PartsUpload(media, key, part_bytes)
        self._failures = 0  # part uploads failed in a row
        self._retry_at = 0.0  # monotonic time before which no part is tried again

    async def resume(self) -> int:
        """Adopt the open upload whose parts the work file still holds; abort any other. Answers how many bytes
        the aborted ones held beyond this work file (an earlier run's media this replica cannot continue)."""
        held, lost = self.sink.size, 0
        for upload in await translated(self._media.open_uploads(self._key)):
            sent = sum(part.size for part in upload.parts)
            numbered = all(part.number == n for n, part in enumerate(upload.parts, 1))
            if self._parts.upload is None and numbered and sent <= held and sent % self._part == 0:
                self._parts.adopt(upload)
                continue
            lost = max(lost, sent - held)
            await translated(upload.abort())
        return lost

    @property
    def sent(self) -> int:
        """Bytes of the work file already uploaded as parts."""
        return self._parts.sent

    # The Sink protocol (engine/files/sinks.py), passed on to the FlvSink
    def held(self) -> int:
        return self.sink.held()

    async def begin(self, *, keep: bool) -> None:
        await self.sink.begin(keep=keep)
        if self.sink.size < self.sent:
            await self.abort_upload()  # a VOD file started over: the parts no longer match it

    async def write(self, chunk: bytes) -> None:
        await self.sink.write(chunk)
        while self.sink.on_disk - self.sent >= self._part and time.monotonic() >= self._retry_at:
            try:
                await self._parts.send(self.sink.temp, self._part)
            except FetchError as exc:
                # The store is down for now: the live stream keeps going to the work file, and the part is
                # sent again later (same part number; S3 keeps the last upload of a number). Only `finish`
                # fails the recording if the store is still down when it is over.
                self._failures += 1
                self._retry_at = time.monotonic() + min(RETRY_MAX_SECONDS, 2.0 ** (self._failures - 1))
                log.warning("a part of the FLV recording could not be uploaded yet: %s", exc.message)
                return
            self._failures = 0

    async def commit(self) -> None:
        await self.sink.commit()

    def abort(self) -> None:
        self.sink.abort()  # the upload stays open: the next connection, or the next run, continues it

    # After the recording
    async def finish(self, sha256: str) -> None:
        """The work file is whole (settled): send the rest and complete, or one PUT for a short recording.
        Done before the file is renamed, so a failure here leaves the `.part` for a retry to continue."""
        size = self.sink.size
        if self._parts.upload is not None:
            while size - self.sent > self._part:  # parts a store outage held back: still 8 MiB each
                await self._parts.send(self.sink.temp, self._part)
        await self._parts.finish(self.sink.temp, size, sha256)

    async def abort_upload(self) -> None:
        with contextlib.suppress(FetchError):  # a store that is down: the bucket's lifecycle rule has the rest
            await self._parts.abort()
