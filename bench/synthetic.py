"""Synthetic media the bench origin serves and the benches verify: deterministic bytes, nothing held whole."""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Iterator

KiB = 1024
MiB = 1024 * KiB
SEED = 20240604
# Segments are windows into one random pool, so each is distinct (a mixed-up index shows in the hash)
# while the origin keeps a single buffer whatever the segment count.
_POOL_SPAN = 4 * MiB
_STRIDE = 7919  # prime: consecutive segments start at unrelated offsets
# The MP4 payload repeats a random block whose length is not a power of two, so chunk borders never line up.
_PATTERN_LEN = MiB + 4093


class Pool:
    """Random bytes shared by every segment (and the MP4 payload pattern)."""

    def __init__(self, segment_size: int) -> None:
        rng = random.Random(SEED)
        self.segment_size = segment_size
        self._data = memoryview(rng.randbytes(_POOL_SPAN + max(segment_size, _PATTERN_LEN)))

    def segment(self, index: int) -> memoryview:
        start = (index * _STRIDE) % _POOL_SPAN
        return self._data[start : start + self.segment_size]

    def pattern(self) -> memoryview:
        return self._data[:_PATTERN_LEN]


def media_playlist(count: int, prefix: str = "") -> str:
    """A VOD media playlist of `count` two-second segments named `<prefix><index>.ts`."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    for index in range(count):
        lines += ["#EXTINF:2.000,", f"{prefix}{index}.ts"]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


class Mp4Layout:
    """A structurally valid MP4 of exactly `size` bytes: ftyp, one 64-bit mdat of pattern bytes, moov/mvhd.

    mvhd says the file lasts `duration` seconds, so the server's duration probe has something to find.
    """

    def __init__(self, size: int, pattern: memoryview, duration: int = 3600) -> None:
        ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
        mvhd = _box(b"mvhd", struct.pack(">B3xII", 0, 0, 0) + struct.pack(">II", 1000, duration * 1000) + bytes(80))
        moov = _box(b"moov", mvhd)
        self.head = ftyp + struct.pack(">I4sQ", 1, b"mdat", 0)  # size patched below
        self.tail = moov
        self.payload = size - len(self.head) - len(self.tail)
        if self.payload < 0:
            raise ValueError(f"an MP4 needs at least {len(self.head) + len(self.tail)} bytes")
        self.head = ftyp + struct.pack(">I4sQ", 1, b"mdat", 16 + self.payload)
        self.size = size
        self._pattern = pattern

    def chunks(self, start: int = 0, chunk: int = MiB) -> Iterator[bytes | memoryview]:
        """The bytes from `start` to the end, in pieces of at most `chunk` (memory stays constant)."""
        head_end, tail_start = len(self.head), len(self.head) + self.payload
        if start < head_end:
            yield self.head[start:]
            start = head_end
        pattern, plen = self._pattern, len(self._pattern)
        while start < tail_start:
            offset = (start - head_end) % plen
            n = min(chunk, tail_start - start, plen - offset)
            yield pattern[offset : offset + n]
            start += n
        if start < self.size:
            yield self.tail[start - tail_start :]

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for piece in self.chunks():
            digest.update(piece)
        return digest.hexdigest()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload
