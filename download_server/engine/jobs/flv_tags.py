"""FLV tags read incrementally (header, then tag + PreviousTagSize units) and a file scanned to its last whole tag.

The format (Adobe FLV v10.1, annex E): a header (`FLV`, version 1, flags, data offset) and a 4-byte
PreviousTagSize0, then tags of an 11-byte header (type, 24-bit size, 24-bit timestamp + 8 extended bits,
stream id), their data, and each followed by its PreviousTagSize. Nothing past one incomplete tag is held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

SIGNATURE = b"FLV"
HEADER_SIZE = 9
TAG_HEADER = 11
PREVIOUS_SIZE = 4
AUDIO, VIDEO, SCRIPT = 8, 9, 18
KINDS = (AUDIO, VIDEO, SCRIPT)
# A header that claims more than this before its first tag is not a real FLV header.
MAX_DATA_OFFSET = 1024
_AAC = 10
_AVC, _HEVC = 7, 12
_ENHANCED = 0x80  # enhanced RTMP/FLV video: the low bits are the packet type, 0 = sequence start


class NotFlv(ValueError):
    """The bytes are not an FLV stream (signature, version, data offset or a tag type is wrong)."""


@dataclass(frozen=True, slots=True)
class Tag:
    kind: int
    timestamp: int  # milliseconds (decoding time)
    raw: bytes  # the whole tag as received: 11-byte header, data, PreviousTagSize

    @classmethod
    def of(cls, kind: int, timestamp: int, data: bytes) -> Tag:
        """A tag made from its parts (the header and PreviousTagSize are computed)."""
        size = len(data)
        raw = bytes((kind,)) + size.to_bytes(3, "big") + _stamp(timestamp) + b"\0\0\0"
        return cls(kind, timestamp, raw + data + (TAG_HEADER + size).to_bytes(4, "big"))

    @property
    def data(self) -> bytes:
        return self.raw[TAG_HEADER:-PREVIOUS_SIZE]

    @property
    def is_media(self) -> bool:
        return self.kind in (AUDIO, VIDEO)

    @property
    def sequence_header(self) -> bool:
        """An AVC/HEVC decoder configuration or an AAC AudioSpecificConfig: the codec setup, not media."""
        return is_sequence_header(self.kind, self.raw[TAG_HEADER : TAG_HEADER + 2])

    def encode(self, timestamp: int) -> bytes:
        """The tag with `timestamp` (the rest byte for byte, PreviousTagSize made right)."""
        size = len(self.raw) - TAG_HEADER - PREVIOUS_SIZE
        tail = (TAG_HEADER + size).to_bytes(4, "big")
        if timestamp == self.timestamp and self.raw.endswith(tail):
            return self.raw  # as received: no copy (most tags of a VOD file, and of a first connection)
        return self.raw[:4] + _stamp(timestamp) + self.raw[8:-PREVIOUS_SIZE] + tail


def _stamp(timestamp: int) -> bytes:
    """Timestamp bytes of a tag header: the low 24 bits, then the extended high 8."""
    return (timestamp & 0xFFFFFF).to_bytes(3, "big") + bytes(((timestamp >> 24) & 0xFF,))


def is_sequence_header(kind: int, data: bytes) -> bool:
    if len(data) < 2:
        return False
    if kind == VIDEO:
        if data[0] & _ENHANCED:
            return data[0] & 0x0F == 0
        return data[0] & 0x0F in (_AVC, _HEVC) and data[1] == 0
    return kind == AUDIO and data[0] >> 4 == _AAC and data[1] == 0


def header_length(data: bytes | bytearray) -> int:
    """Bytes of the file header plus PreviousTagSize0, from its first 9 bytes; NotFlv when it is not one."""
    if bytes(data[:3]) != SIGNATURE:
        raise NotFlv("not an FLV stream (no FLV signature)")
    if data[3] != 1:
        raise NotFlv(f"FLV version {data[3]} is not supported")
    offset = int.from_bytes(data[5:9], "big")
    if not HEADER_SIZE <= offset <= MAX_DATA_OFFSET:
        raise NotFlv(f"the FLV header's data offset {offset} is not valid")
    return offset + PREVIOUS_SIZE


class TagReader:
    """Feed it bytes as they arrive; it returns the whole tags among them (and keeps the header apart)."""

    def __init__(self, *, header: bool = True) -> None:
        self._buffer = bytearray()
        self._want_header = header
        self.header: bytes | None = None  # the file header as received (with PreviousTagSize0)

    @property
    def pending(self) -> int:
        """Bytes held of a tag that has not arrived whole."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[Tag]:
        buffer = self._buffer
        buffer += chunk
        position = 0
        if self._want_header:
            if not SIGNATURE.startswith(bytes(buffer[:3])):
                raise NotFlv("not an FLV stream (no FLV signature)")  # an HTML page: known from its first byte
            if len(buffer) < HEADER_SIZE or len(buffer) < header_length(buffer):
                return []
            position = header_length(buffer)
            self.header = bytes(buffer[:position])
            self._want_header = False
        tags = []
        while len(buffer) - position >= TAG_HEADER:
            tag, end = _tag_at(buffer, position)
            if tag is None:
                break
            tags.append(tag)
            position = end
        del buffer[:position]
        return tags


def _tag_at(buffer: bytearray, position: int) -> tuple[Tag | None, int]:
    kind = buffer[position] & 0x1F
    if kind not in KINDS:
        raise NotFlv(f"FLV tag type {kind} at a tag boundary: the stream is corrupt")
    size = int.from_bytes(buffer[position + 1 : position + 4], "big")
    end = position + TAG_HEADER + size + PREVIOUS_SIZE
    if len(buffer) < end:
        return None, position
    timestamp = int.from_bytes(buffer[position + 4 : position + 7], "big") | buffer[position + 7] << 24
    with memoryview(buffer) as view:  # one copy of the tag, released before the buffer is trimmed
        raw = bytes(view[position:end])
    return Tag(kind, timestamp, raw), end


@dataclass
class Scan:
    """What a recording file holds up to its last whole tag."""

    end: int = 0  # bytes up to the end of the last whole tag (0: not even a whole header)
    header: bytes = b""
    metadata: bool = False  # a script tag (onMetaData) was written
    sequence: dict[int, bytes] = field(default_factory=dict)  # the last sequence header per kind
    last: dict[int, int] = field(default_factory=dict)  # the last media timestamp per kind
    first_media: int | None = None
    top: int = -1  # the highest media timestamp
    step: int = 0  # the last video frame interval (ms)
    video_frames: int = 0

    @property
    def media_seconds(self) -> float:
        if self.first_media is None:
            return 0.0
        return (self.top - self.first_media + self.step) / 1000


def scan(path: Path) -> Scan:
    """Blocking: walk the tag headers of `path` (data read only for codec setup and metadata). A file cut
    mid-tag (a killed process) ends at its last whole tag; bytes past `end` are to be cut off."""
    result = Scan()
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(HEADER_SIZE)
        if len(head) < HEADER_SIZE:
            return result
        length = header_length(head)
        if size < length:
            return result
        handle.seek(0)
        result.header, result.end = handle.read(length), length
        while result.end + TAG_HEADER <= size:
            handle.seek(result.end)
            raw = handle.read(TAG_HEADER)
            kind, data_size = raw[0] & 0x1F, int.from_bytes(raw[1:4], "big")
            end = result.end + TAG_HEADER + data_size + PREVIOUS_SIZE
            if kind not in KINDS or end > size:
                break
            timestamp = int.from_bytes(raw[4:7], "big") | raw[7] << 24
            _count(result, handle, kind, timestamp, data_size)
            result.end = end
    return result


def _count(result: Scan, handle: BinaryIO, kind: int, timestamp: int, data_size: int) -> None:
    read = handle.read
    if kind == SCRIPT:
        result.metadata = True
        return
    head = read(min(data_size, 2))
    if is_sequence_header(kind, head):
        result.sequence[kind] = head + read(data_size - len(head))
        return
    if kind == VIDEO:
        previous = result.last.get(VIDEO)
        if previous is not None and 0 < timestamp - previous < 1000:
            result.step = timestamp - previous
        result.video_frames += 1
    result.last[kind] = timestamp
    result.top = max(result.top, timestamp)
    if result.first_media is None:
        result.first_media = timestamp
