"""Where each FLV tag lands in a recording: timestamps continuous across reconnects, codec setup and metadata
written once (again only when it changed), and the end a max_duration_seconds sets.

A live FLV origin starts every connection with the file header, onMetaData and the AVC/AAC sequence headers,
and its timestamps either restart at zero or follow a clock of its own. A recording that simply appended
each connection would jump back in time and repeat the codec setup (players then stall or seek wrongly).
So, as live recorders do (BililiveRecorder's timestamp fixing, for one), each connection's first media tag is
placed one frame after the last tag written and the rest of the connection keeps its spacing from there;
a header or metadata already written is dropped, a sequence header only written when it differs. A CDN
that starts the new connection with pictures we have already (its GOP cache) on the same clock is
recognised tag by tag (Recent): those tags are dropped and the recording goes on on that clock, nothing lost.
"""

from __future__ import annotations

import zlib
from collections import deque

from download_server.engine.jobs.flv_tags import PREVIOUS_SIZE, SCRIPT, TAG_HEADER, VIDEO, Scan, Tag

DEFAULT_STEP_MS = 33  # one frame at 30 fps: the spacing after a join until the stream shows its own
REBOUND_MS = 1000  # a timestamp this far back within one connection: the source's clock restarted
JUMP_MS = 10_000  # this far forward within one connection: a clock jump, not media (which would be a gap)


# Media tags remembered (about a minute of a typical stream): what a reconnect may send again.
RECENT_TAGS = 4096


class Recent:
    """The last media tags written, by (kind, source timestamp, CRC-32 of the data). A CDN starts a new
    connection with the last group of pictures it holds; on the same clock those tags are ones we wrote
    already, recognised tag by tag (never by time alone: a restarted encoder reuses the same times)."""

    def __init__(self) -> None:
        self._order: deque[tuple[int, int, int]] = deque()
        self._keys: set[tuple[int, int, int]] = set()

    @staticmethod
    def key(tag: Tag) -> tuple[int, int, int]:
        with memoryview(tag.raw) as view:
            return tag.kind, tag.timestamp, zlib.crc32(view[TAG_HEADER:-PREVIOUS_SIZE])

    def add(self, key: tuple[int, int, int]) -> None:
        self._order.append(key)
        self._keys.add(key)
        if len(self._order) > RECENT_TAGS:
            self._keys.discard(self._order.popleft())

    def __contains__(self, key: tuple[int, int, int]) -> bool:
        return key in self._keys


class RecordingLimit(Exception):
    """max_duration_seconds or DOWNLOAD_MAX_FILE_BYTES is reached: the recording ends, COMPLETED."""


class Timeline:
    """Output timestamps of one recording, per connection. `repair` False (a VOD file): every tag as is."""

    def __init__(self, scan: Scan | None = None, *, repair: bool = False, limit_ms: int = 0) -> None:
        held = scan or Scan()
        self.repair = repair
        self.limit_ms = limit_ms  # 0: no limit
        self.header_written = bool(held.header)
        self.metadata_written = held.metadata
        self.sequence = dict(held.sequence)
        self.last = dict(held.last)  # the last output timestamp per kind
        self.first = held.first_media
        self.top = held.top
        self.step = held.step or DEFAULT_STEP_MS
        self.video_frames = held.video_frames
        self._offset: int | None = None
        self._previous: int | None = None  # the offset of the connection before
        self._source_last: dict[int, int] = {}
        self._recent = Recent()
        self._fresh = True  # no new media placed yet in this connection
        self._replaying = False  # this connection began with media already written
        # How this connection's media joined the recording: True, on the same clock right after a replay of
        # what we had (nothing lost); False, one frame after the last tag (what came between is lost).
        self.seamless: bool | None = None

    @property
    def media_ms(self) -> int:
        """Milliseconds of media written (the last frame's own duration included)."""
        return 0 if self.first is None else self.top - self.first + self.step

    def new_connection(self) -> None:
        if self._offset is not None:
            self._previous = self._offset
        self._offset = None
        self._source_last = {}
        self._fresh, self._replaying, self.seamless = True, False, None

    def header(self, header: bytes) -> bytes:
        if self.header_written:
            return b""
        self.header_written = True
        return header

    def place(self, tag: Tag) -> bytes:
        """The bytes to append for `tag` (b"" when it is dropped); RecordingLimit when the limit is reached."""
        if tag.kind == SCRIPT:
            if self.repair and self.metadata_written:
                return b""
            self.metadata_written = True
            return tag.encode(self._anchor() if self.repair else tag.timestamp)
        if tag.sequence_header:
            if self.repair and self.sequence.get(tag.kind) == tag.data:
                return b""  # the same codec setup again after a reconnect
            self.sequence[tag.kind] = tag.data
            return tag.encode(self._anchor() if self.repair else tag.timestamp)
        if not self.repair:
            return self._media(tag, tag.timestamp)
        key = Recent.key(tag)
        if self._fresh and key in self._recent:
            self._replaying = True  # the origin resends what we have: dropped, and its clock is ours
            self._source_last[tag.kind] = tag.timestamp
            return b""
        if self._fresh:
            self._fresh = False
            self.seamless = self._replaying and self._previous is not None
            if self.seamless:
                self._offset = self._previous
        placed = self._media(tag, self._shifted(tag))
        self._recent.add(key)
        return placed

    def _anchor(self) -> int:
        """Where the next connection's media starts: one frame after the last media written."""
        return self.top + self.step if self.top >= 0 else 0

    def _shifted(self, tag: Tag) -> int:
        previous = self._source_last.get(tag.kind)
        self._source_last[tag.kind] = tag.timestamp
        if tag.kind == VIDEO and previous is not None and 0 < tag.timestamp - previous < 1000:
            self.step = tag.timestamp - previous  # learnt from the source: a clamped time says nothing of it
        jumped = previous is not None and not -REBOUND_MS <= tag.timestamp - previous <= JUMP_MS
        if self._offset is None or jumped:
            self._offset = self._anchor() - tag.timestamp
        placed = tag.timestamp + self._offset
        last = self.last.get(tag.kind)
        if last is None:
            return max(placed, 0)
        # Decode times never go back per stream (video strictly rising: two frames at one instant stall muxers).
        return max(placed, last + 1 if tag.kind == VIDEO else last)

    def _media(self, tag: Tag, placed: int) -> bytes:
        if self.limit_ms and self.first is not None and placed - self.first >= self.limit_ms:
            raise RecordingLimit(f"recorded the {self.limit_ms // 1000} s of max_duration_seconds")
        if tag.kind == VIDEO:
            previous = self.last.get(VIDEO)
            if not self.repair and previous is not None and 0 < placed - previous < 1000:
                self.step = placed - previous
            self.video_frames += 1
        self.last[tag.kind] = placed
        self.top = max(self.top, placed)
        if self.first is None:
            self.first = placed
        return tag.encode(placed)
