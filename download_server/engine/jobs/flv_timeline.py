"""Where each FLV tag lands in a recording: timestamps continuous across reconnects, codec setup and metadata
written once (again only when it changed), and the end a max_duration_seconds sets.

A live FLV origin starts every connection with the file header, onMetaData and the AVC/AAC sequence headers,
and its timestamps either restart at zero or follow a clock of its own. A recording that simply appended
each connection would jump back in time and repeat the codec setup (players then stall or seek wrongly).
So, as live recorders do (BililiveRecorder's timestamp fixing, for one), each connection's first media tag is
placed one frame after the last tag written and the rest of the connection keeps its spacing from there;
a header or metadata already written is dropped, a sequence header only written when it differs.
"""

from __future__ import annotations

from download_server.engine.jobs.flv_tags import SCRIPT, VIDEO, Scan, Tag

DEFAULT_STEP_MS = 33  # one frame at 30 fps: the spacing after a join until the stream shows its own
REBOUND_MS = 1000  # a timestamp this far back within one connection: the source's clock restarted
JUMP_MS = 10_000  # this far forward within one connection: a clock jump, not media (which would be a gap)


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
        self._source_last: dict[int, int] = {}

    @property
    def media_ms(self) -> int:
        """Milliseconds of media written (the last frame's own duration included)."""
        return 0 if self.first is None else self.top - self.first + self.step

    def new_connection(self) -> None:
        self._offset = None
        self._source_last = {}

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
        return self._media(tag, self._shifted(tag) if self.repair else tag.timestamp)

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
