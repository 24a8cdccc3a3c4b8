"""The ISO BMFF `sidx` box (ISO/IEC 14496-12 8.16.3): where each subsegment of a SegmentBase file lies."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from download_server.engine.failures import ErrorType, FetchError


@dataclass(frozen=True)
class Subsegment:
    offset: int  # in the file
    length: int
    start: float  # seconds from the first subsegment's presentation time
    duration: float


def parse(data: bytes, index_end: int, *, max_entries: int) -> list[Subsegment]:
    """The subsegments a sidx box at the start of `data` lists; `index_end` is the file offset just past
    the index range (the spec's anchor: first_offset counts from the byte after the box)."""
    box = _find_sidx(data)
    if box is None:
        raise FetchError(ErrorType.BAD_CONTENT, "the SegmentBase indexRange holds no sidx box")
    start, size = box
    body = memoryview(data)[start : start + size]
    try:
        version = body[8]
        timescale = struct.unpack_from(">I", body, 16)[0]
        if version == 0:
            _earliest, first_offset = struct.unpack_from(">II", body, 20)
            position = 28
        else:
            _earliest, first_offset = struct.unpack_from(">QQ", body, 20)
            position = 36
        count = struct.unpack_from(">H", body, position + 2)[0]
        position += 4
        if count > max_entries:
            raise FetchError(ErrorType.TOO_LARGE, f"the sidx lists {count} subsegments, over {max_entries}")
        if timescale == 0:
            raise FetchError(ErrorType.BAD_CONTENT, "the sidx has a timescale of 0")
        offset = index_end + first_offset
        elapsed = 0
        subsegments = []
        for _ in range(count):
            reference, duration, _sap = struct.unpack_from(">III", body, position)
            position += 12
            if reference >> 31:
                raise FetchError(ErrorType.BAD_CONTENT, "a hierarchical sidx (a reference to another sidx)")
            length = reference & 0x7FFFFFFF
            if length == 0:
                raise FetchError(ErrorType.BAD_CONTENT, "a sidx subsegment of 0 bytes")
            subsegments.append(Subsegment(offset, length, elapsed / timescale, duration / timescale))
            offset += length
            elapsed += duration
    except struct.error:
        raise FetchError(ErrorType.BAD_CONTENT, "the sidx box is cut short") from None
    return subsegments


def _find_sidx(data: bytes) -> tuple[int, int] | None:
    """(offset, size) of the first sidx among the top-level boxes in `data` (a styp may come first)."""
    position = 0
    while position + 8 <= len(data):
        size, name = struct.unpack_from(">I4s", data, position)
        if size == 1 and position + 16 <= len(data):
            size = struct.unpack_from(">Q", data, position + 8)[0]
        if size < 8:
            return None
        if name == b"sidx":
            return position, min(size, len(data) - position)
        position += size
    return None
