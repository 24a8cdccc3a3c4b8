"""A file fetched over several connections, on disk: one preallocated work file written at offsets, the
sidecar that says how far each piece got, and the hash of the contiguous prefix.

Why a sidecar file and not rows: the progress of a piece is only meaningful together with the bytes in
the work file beside it. Kept next to it, both go together (a deleted task, a changed URL, a lost disk),
the segment row keeps meaning "the whole file" for every other part of the engine, and no migration or
store method is needed for what is scratch state of one download. It is rewritten atomically (a temp file
renamed over it) about once a second and whenever the download stops; it only ever counts bytes whose
write has returned, so after a crash or a pause each piece resumes from a point it really holds (at worst
a second's bytes are fetched again).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from download_server.engine.fence import DiskRunner

VERSION = 1
_SAVING = threading.Lock()
HASH_BLOCK = 1024 * 1024  # read back per step by the prefix hasher (one reused buffer)
# A piece writes what it received every 512 KiB (or 256 chunks, well under IOV_MAX): with 8 connections
# that is 4 MiB in buffers at most, and the writes stay few enough to cost nothing next to the network.
PIECE_FLUSH_BYTES = 512 * 1024
PIECE_FLUSH_CHUNKS = 256


@dataclass
class Piece:
    """Bytes [start, start + length) of the file; `done` of them, from `start` on, are on disk."""

    index: int
    start: int
    length: int
    done: int = 0

    @property
    def complete(self) -> bool:
        return self.done >= self.length


@dataclass
class RangeState:
    """What a ranged download was planned against (the origin's validators) and how far each piece got."""

    url: str
    total: int
    piece_size: int
    etag: str = ""
    last_modified: str = ""
    content_type: str = ""
    pieces: list[Piece] = field(default_factory=list)

    @classmethod
    def plan(
        cls, url: str, total: int, piece_size: int, *, etag: str = "", last_modified: str = "", content_type: str = ""
    ) -> RangeState:
        state = cls(url, total, piece_size, etag, last_modified, content_type)
        state.pieces = [
            Piece(i, start, min(piece_size, total - start)) for i, start in enumerate(range(0, total, piece_size))
        ]
        return state

    def done_bytes(self) -> int:
        return sum(piece.done for piece in self.pieces)

    def prefix(self) -> int:
        """Bytes from offset 0 that are all on disk (what the hash may cover so far)."""
        end = 0
        for piece in self.pieces:
            end = piece.start + piece.done
            if not piece.complete:
                break
        return end

    def complete(self) -> bool:
        return all(piece.complete for piece in self.pieces)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "version": VERSION,
            "url": self.url,
            "total": self.total,
            "piece_size": self.piece_size,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "content_type": self.content_type,
            "done": [piece.done for piece in self.pieces],
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RangeState | None:
        """The state a sidecar holds, or None when it is not one this version wrote whole and consistent."""
        try:
            data = json.loads(text)
            if data["version"] != VERSION:
                return None
            state = cls.plan(
                str(data["url"]),
                int(data["total"]),
                int(data["piece_size"]),
                etag=str(data["etag"]),
                last_modified=str(data["last_modified"]),
                content_type=str(data["content_type"]),
            )
            done = [int(value) for value in data["done"]]
        except (ValueError, KeyError, TypeError):
            return None
        if state.total <= 0 or state.piece_size <= 0 or len(done) != len(state.pieces):
            return None
        for piece, value in zip(state.pieces, done, strict=True):
            if not 0 <= value <= piece.length:
                return None
            piece.done = value
        return state


def load_state(sidecar: Path, work: Path) -> RangeState | None:
    """Blocking. The saved state, if its sidecar is sound and its work file has the planned size."""
    try:
        state = RangeState.from_json(sidecar.read_text())
        if state is None or work.stat().st_size != state.total:
            return None
    except (OSError, UnicodeDecodeError):
        return None
    return state


def save_state(sidecar: Path, state: RangeState) -> None:
    """Blocking. Replace the sidecar atomically: a crash leaves the old state or the new, never half."""
    # It ends in .part too, so nothing that skips unfinished files (find_image) ever takes it for a result.
    temp = sidecar.with_name(f"{sidecar.name.removesuffix('.part')}-new.part")
    with _SAVING:  # a save still running (its waiter was cancelled) must not share the temp file with the next
        temp.write_text(state.to_json())
        os.replace(temp, sidecar)


class WorkFile:
    """The file every piece writes into at its own offsets (one descriptor shared by every writer thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise RuntimeError("the work file is not open")
        return self._fd

    def open(self, total: int, *, fresh: bool) -> None:
        """Blocking. Open (a fresh file: create it empty) and give it its full size at once.

        Preallocated with posix_fallocate where the filesystem can: a full disk shows now, as one clear
        error, not after half the download; elsewhere the file is only extended (sparse).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | (os.O_TRUNC if fresh else 0), 0o666)
        if os.fstat(self._fd).st_size == total:
            return
        try:
            os.posix_fallocate(self._fd, 0, total)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                self.close()
                raise
            os.ftruncate(self._fd, total)

    def pwritev(self, offset: int, chunks: list[bytes]) -> None:
        """Blocking: the chunks one after another from `offset`, as they came (no joined copy)."""
        views = [memoryview(chunk) for chunk in chunks]
        while views:
            written = os.pwritev(self.fd, views, offset)
            offset += written
            while views and written >= len(views[0]):
                written -= len(views.pop(0))
            if written:
                views[0] = views[0][written:]

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class PrefixHasher:
    """SHA-256 of the file in order, read back from the work file (the page cache) as its prefix grows."""

    def __init__(self, work: WorkFile) -> None:
        self._work = work
        self._digest = hashlib.sha256()
        self._buffer = bytearray(HASH_BLOCK)
        self.hashed = 0

    def advance(self, upto: int) -> None:
        """Blocking (hashlib and pread release the GIL): hash bytes [hashed, upto)."""
        view = memoryview(self._buffer)
        while self.hashed < upto:
            want = min(HASH_BLOCK, upto - self.hashed)
            got = os.preadv(self._work.fd, [view[:want]], self.hashed)
            if got <= 0:
                raise OSError(errno.EIO, f"the work file ended at {self.hashed} bytes")
            self._digest.update(view[:got])
            self.hashed += got

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class PieceSink:
    """The Sink of one piece: bytes buffered up to 512 KiB, then written at their offset in a writer thread.

    held() is what the piece has accepted (on disk or buffered): a retry asks the origin for the rest of
    the piece from there, and the buffered bytes are written before the new ones (settle()). `piece.done`
    moves only in the writer thread, after the write returned, so a saved state never counts a byte the
    file does not hold.
    """

    def __init__(
        self,
        work: WorkFile,
        piece: Piece,
        writer: DiskRunner,
        *,
        on_write: Callable[[int], None],
        on_flushed: Callable[[], None],
    ) -> None:
        self.piece = piece
        self.position = piece.done
        self._work = work
        self._writer = writer
        self._on_write = on_write
        self._on_flushed = on_flushed
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._inflight: asyncio.Future[None] | None = None

    def held(self) -> int:
        return self.position

    async def begin(self, *, keep: bool) -> None:
        if keep or not self.position:
            return
        # The origin restarts the piece from its first byte: what the piece held is written over.
        await self._settle_inflight()
        self._on_write(-(self.position))
        self._buffer, self._buffered = [], 0
        self.position = self.piece.done = 0

    async def write(self, chunk: bytes) -> None:
        self._buffer.append(chunk)
        self._buffered += len(chunk)
        self.position += len(chunk)
        self._on_write(len(chunk))
        if self._buffered >= PIECE_FLUSH_BYTES or len(self._buffer) >= PIECE_FLUSH_CHUNKS:
            await self._flush()

    async def commit(self) -> None:
        await self._flush()

    def abort(self) -> None:
        """Nothing to drop: the buffered bytes are the piece's (settle() writes them, held() counts them)."""

    async def settle(self) -> None:
        """Write whatever is buffered and wait for it (called when a piece's fetch ends, however it ends)."""
        await self._settle_inflight()
        if self._buffer:
            await self._flush()

    async def _settle_inflight(self) -> None:
        if self._inflight is not None and not self._inflight.done():
            await asyncio.shield(self._inflight)

    async def _flush(self) -> None:
        await self._settle_inflight()
        if not self._buffer:
            return
        chunks, size = self._buffer, self._buffered
        self._buffer, self._buffered = [], 0
        piece, offset = self.piece, self.piece.start + self.piece.done

        def write() -> None:
            self._work.pwritev(offset, chunks)
            piece.done = offset + size - piece.start

        self._inflight = self._writer.run(write)
        try:
            # Shielded: a cancelled fetch must not leave the write and a later one racing for the file.
            await asyncio.shield(self._inflight)
        except OSError:
            self.position = piece.done  # what failed to reach the disk is fetched again
            raise
        self._on_flushed()
