"""One big file over several connections (DOWNLOAD_RANGE_CONNECTIONS): pieces fetched at once, resumable each.

How a whole-file job (MP4, image) uses it, through fetch_whole():
- The first request is the job's ordinary GET. When the origin answers it 200 with a length and
  `Accept-Ranges: bytes`, and the file is worth splitting (at least two minimum parts), the job's check
  raises RangesOffered: that response is dropped after its headers and the file is planned in pieces.
- Pieces are taken in file order by `connections` workers, each piece one Range request through the same
  Fetcher as everything else: URL policy on every redirect hop, stall and minimum-rate guards, retries with
  backoff, the host's circuit breaker, the run's retry budget and the user's quota, per request. A retry
  after a reset asks only for the rest of its piece.
- Bytes go straight to their offsets in one preallocated work file (engine/files/pieces.py), the per-piece
  progress to a sidecar file beside it, so a pause, a crash or a restart resumes each piece where it was.
- The SHA-256 follows the contiguous prefix, read back from the page cache while the later pieces still
  arrive: in-order pieces keep that prefix close behind, so little is left to hash at the end.
- Every piece answer must be a 206 for the planned file: same total, same ETag and Last-Modified. An origin
  that ignores Range falls back to one connection; one whose file changed restarts cleanly (a fresh plan,
  at most MAX_RESTARTS times in a run, then one connection, whose own checks see the file change).
Memory: each connection holds at most 512 KiB of received chunks plus aiohttp's read buffer; the hasher one
1 MiB block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiohttp

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.growing import PrefixUpload
from download_server.engine.files.pieces import (
    Piece,
    PieceSink,
    PrefixHasher,
    RangeState,
    WorkFile,
    load_state,
    save_state,
)
from download_server.engine.http.body import sink_call
from download_server.engine.jobs.ledger import RunLedger

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_PIECE = 64 * 1024 * 1024
# Pieces per connection: enough that the in-order prefix (the hash) stays close behind the fastest piece
# and that connections finish together; few enough that requests stay a small cost.
PIECES_PER_CONNECTION = 8
MAX_RESTARTS = 2

ContentCheck = Callable[[aiohttp.ClientResponse], object]  # raises FetchError for a wrong type


class RangesOffered(Exception):
    """Raised by a job's response check: fetch this file in pieces (the response is dropped)."""

    def __init__(self, state: RangeState) -> None:
        super().__init__(f"{state.total} bytes in {len(state.pieces)} pieces")
        self.state = state


class RangesRefused(Exception):
    """A piece was answered with the whole file (or no Content-Range): the origin does not do ranges."""


class OriginChanged(Exception):
    """A piece came from another version of the file (length, ETag or Last-Modified differ)."""


@dataclass(frozen=True)
class WholeFile:
    size: int
    sha256: str
    attempts: int
    published: bool = False  # already in the media store (uploaded in parts as it grew)


def piece_size(total: int, connections: int, min_part: int) -> int:
    wanted = math.ceil(total / (max(1, connections) * PIECES_PER_CONNECTION))
    return max(min_part, min(MAX_PIECE, wanted))


def offer_ranges(resp: aiohttp.ClientResponse, ctx: RunLedger, url: str, *, max_bytes: int | None) -> None:
    """Raise RangesOffered when this first answer (200, nothing held) allows fetching in pieces."""
    settings = ctx.parts.settings
    total = resp.content_length
    if settings.range_connections < 2 or resp.status != 200 or total is None:
        return
    if total < 2 * settings.range_min_part_bytes or (max_bytes is not None and total > max_bytes):
        return  # small: one connection is as fast; too large: the one-connection path says TOO_LARGE
    if "bytes" not in resp.headers.get("Accept-Ranges", "").lower():
        return
    size = piece_size(total, settings.range_connections, settings.range_min_part_bytes)
    raise RangesOffered(
        RangeState.plan(
            url,
            total,
            size,
            etag=resp.headers.get("ETag", ""),
            last_modified=resp.headers.get("Last-Modified", ""),
            content_type=resp.headers.get("Content-Type", "").split(";")[0].strip().lower(),
        )
    )


async def fetch_whole(
    ranged: RangedFetch,
    single: Callable[[bool], Awaitable[WholeFile]],
    final_of: Callable[[RangeState], Path],
) -> WholeFile:
    """The file in pieces when a saved plan exists or the origin offers ranges, else over one connection.

    `single(offer)` is the job's one-connection download; with offer=True its check may raise RangesOffered.
    """
    state = await ranged.saved()
    offer, restarts = True, 0
    while True:
        try:
            if state is None:
                return await single(offer)
            return await ranged.fetch(state, final_of(state))
        except RangesOffered as offered:
            state = offered.state
        except RangesRefused as exc:
            log.info("ranges refused, one connection from now on: %s", exc, extra={"task_id": ranged.task_id})
            await ranged.discard()
            state, offer = None, False
        except OriginChanged as exc:
            restarts += 1
            log.warning("the file changed during a ranged download: %s", exc, extra={"task_id": ranged.task_id})
            await ranged.discard()
            state, offer = None, restarts <= MAX_RESTARTS


class RangedFetch:
    """The pieces of one file: planning state, workers, the prefix hasher, the sidecar, the final rename."""

    def __init__(self, ctx: RunLedger, url: str, work: Path, sidecar: Path, content_check: ContentCheck) -> None:
        self._ctx = ctx
        self.url = url
        self.work_path = work
        self.sidecar = sidecar
        self._content_check = content_check
        self._state: RangeState | None = None
        self._accepted = 0
        self._retries = 0

    @property
    def task_id(self) -> str:
        return self._ctx.task.id

    async def saved(self) -> RangeState | None:
        """The plan a stopped ranged download of this URL left (its pieces resume), else None."""
        state = await asyncio.to_thread(load_state, self.sidecar, self.work_path)
        if state is not None and state.url == self.url:
            return state
        if await asyncio.to_thread(lambda: self.sidecar.exists() or self.work_path.exists()):
            await self.discard()  # unreadable or for another URL: nothing in it can be trusted
        return None

    async def discard(self) -> None:
        def remove() -> None:
            self.work_path.unlink(missing_ok=True)
            self.sidecar.unlink(missing_ok=True)

        await self._disk(remove)

    async def fetch(self, state: RangeState, final: Path) -> WholeFile:
        """Every missing piece, then the hash of the whole and the rename onto `final`."""
        self._state, self._retries = state, 0
        task = self._ctx.task
        task.bytes_total = state.total
        self._accepted = state.done_bytes()
        self._on_write(0)
        work = WorkFile(self.work_path)
        await self._disk(lambda: work.open(state.total, fresh=self._accepted == 0))
        hasher = PrefixHasher(work)
        upload = await self._upload_of(final, state)  # None on the local backend
        try:
            await self._disk(lambda: save_state(self.sidecar, state))
            await self._download(state, work, hasher, upload)
            await _uninterrupted(asyncio.to_thread(hasher.advance, state.total))
            await self._disk(lambda: self._finish(work, final))
            if upload is not None:
                await upload.finish(final, state.total)
        except (FetchError, OriginChanged, RangesRefused):
            if upload is not None:  # a stop (pause, shutdown) leaves it open for the next run instead
                with contextlib.suppress(FetchError):  # a store that is down: the bucket's lifecycle rule
                    await upload.abort()
            raise
        finally:
            work.close()
        return WholeFile(state.total, hasher.hexdigest(), 1 + self._retries, published=upload is not None)

    async def _upload_of(self, final: Path, state: RangeState) -> PrefixUpload | None:
        """With a remote store, the upload the prefix goes up in as it grows (an open one adopted)."""
        parts = self._ctx.parts
        if not parts.media.remote:
            return None
        upload = PrefixUpload(parts.media, parts.storage.key(final))
        await upload.resume(state.prefix())
        return upload

    def _finish(self, work: WorkFile, final: Path) -> None:
        work.close()
        try:
            os.replace(self.work_path, final)
        except FileNotFoundError:  # the work file is there: it is the final folder that is missing
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.work_path, final)
        self.sidecar.unlink(missing_ok=True)

    async def _download(
        self, state: RangeState, work: WorkFile, hasher: PrefixHasher, upload: PrefixUpload | None
    ) -> None:
        progressed, grown = asyncio.Event(), asyncio.Event()

        def flushed() -> None:
            progressed.set()
            grown.set()

        helpers = [asyncio.create_task(self._hash_along(state, hasher, progressed))]
        if upload is not None:  # whole parts of the prefix go up while the later pieces still arrive
            helpers.append(asyncio.create_task(upload.follow(self.work_path, state.prefix, state.total, grown)))
        try:
            await self._pieces(state, work, flushed)
            for helper in helpers:
                await helper
        finally:
            # However the pieces ended, the helpers' threads are done with the work file before it closes.
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _pieces(self, state: RangeState, work: WorkFile, flushed: Callable[[], None]) -> None:
        """Every missing piece over the connections; the state is saved when they stop, however they stop."""
        todo = deque(piece for piece in state.pieces if not piece.complete)
        saving = asyncio.create_task(self._save_every(state))
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(max(1, self._ctx.parts.settings.range_connections), len(todo))):
                    group.create_task(self._worker(todo, work, flushed))
        except BaseExceptionGroup as failures:
            raise _most_telling(failures) from None
        finally:
            saving.cancel()
            await asyncio.gather(saving, return_exceptions=True)
            await self._disk(lambda: save_state(self.sidecar, state))

    async def _worker(self, todo: deque[Piece], work: WorkFile, flushed: Callable[[], None]) -> None:
        writer = self._ctx.parts.writer
        while todo:
            piece = todo.popleft()
            sink = PieceSink(work, piece, writer, on_write=self._on_write, on_flushed=flushed)
            try:
                got = await self._ctx.parts.fetcher.download(
                    self.url, sink, byterange=(piece.start, piece.length), check=self._check_piece
                )
            except FetchError as exc:
                self._retries += max(0, exc.attempts - 1)
                raise
            finally:
                await sink_call(sink.settle())  # the buffered bytes reach the disk before the state is saved
            self._retries += got.attempts - 1
            if not piece.complete:
                raise FetchError(ErrorType.TRUNCATED, f"piece {piece.index} ended short", retryable=True)

    def _check_piece(self, resp: aiohttp.ClientResponse) -> None:
        state = self._state
        assert state is not None
        self._content_check(resp)
        if resp.status != 206:
            raise RangesRefused(f"a range request was answered HTTP {resp.status}")
        total = resp.headers.get("Content-Range", "").rpartition("/")[2]
        if not total.isdigit():
            raise RangesRefused("a range answer without a Content-Range total")
        if int(total) != state.total:
            raise OriginChanged(f"the length went from {state.total} to {total} bytes")
        for header, planned in (("ETag", state.etag), ("Last-Modified", state.last_modified)):
            now = resp.headers.get(header, "")
            if planned and now and now != planned:
                raise OriginChanged(f"the {header} went from {planned} to {now}")

    async def _hash_along(self, state: RangeState, hasher: PrefixHasher, progressed: asyncio.Event) -> None:
        while hasher.hashed < state.total:
            upto = state.prefix()
            if upto > hasher.hashed:
                try:
                    await _uninterrupted(asyncio.to_thread(hasher.advance, upto))
                except OSError as exc:
                    raise FetchError(ErrorType.IO, f"reading the file back to hash it failed: {exc}") from exc
            else:
                await progressed.wait()
                progressed.clear()

    async def _save_every(self, state: RangeState) -> None:
        interval = max(0.05, self._ctx.parts.settings.flush_interval)
        while True:
            await asyncio.sleep(interval)
            await self._disk(lambda: save_state(self.sidecar, state))

    def _on_write(self, nbytes: int) -> None:
        task, total = self._ctx.task, self._state.total if self._state else 0
        self._accepted += nbytes
        if nbytes > 0:
            self._ctx.tracker.received(nbytes)
        task.bytes_downloaded = self._accepted
        if total:
            task.progress = min(1.0, self._accepted / total)

    async def _disk(self, fn: Callable[[], None]) -> None:
        """Blocking file work on the run's (fenced) writer; disk errors as failure records, never retried.
        Shielded: a stop while it runs must not leave it and the next file step racing."""
        await sink_call(asyncio.shield(self._ctx.parts.writer.run(fn)))


async def _uninterrupted(future: Awaitable[T]) -> T:
    """Await a thread's work; if cancelled meanwhile, wait for the thread to finish before going on (the
    work file it reads must not be closed under it)."""
    job = asyncio.ensure_future(future)
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        await asyncio.gather(job, return_exceptions=True)
        raise


def _most_telling(failures: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception a failed set of pieces stands for: a stop (lease lost) first, then a change of
    plan, then the first fetch error (one piece's failure cancelled the others)."""
    leaves = _leaves(failures)
    ranked = [exc for exc in leaves if not isinstance(exc, Exception)]
    for kind in (OriginChanged, RangesRefused, FetchError):
        ranked += [exc for exc in leaves if isinstance(exc, kind)]
    return (ranked or leaves)[0]


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found
