"""Response bodies into sinks: which bytes to keep (ranges, resumes), size bounds, disk errors as ours."""

from __future__ import annotations

import errno
import re
import time
from collections.abc import Awaitable, Callable

import aiohttp

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.sinks import Sink

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})  # no space, or the quota of the server's user is spent


def plan_body(
    resp: aiohttp.ClientResponse, byterange: tuple[int, int] | None, held: int, expected_total: int
) -> tuple[int, int | None, bool]:
    """(bytes to skip, bytes to take or None for all, keep what the sink holds) for this response."""
    partial = _content_range(resp) if resp.status == 206 else None
    if byterange is not None:
        offset, length = byterange
        if partial is not None:
            if partial[0] != offset:
                raise FetchError(ErrorType.BAD_CONTENT, "the origin answered a different byte range", retryable=True)
            return 0, length, False
        return offset, length, False  # the origin ignored Range: cut the range out of the full body
    if held and partial is not None:
        start, total = partial
        if start == held and (not expected_total or total in (None, expected_total)):
            return 0, None, True
        # A piece of some other version of the file: useless here, and what we hold may be stale too.
        raise FetchError(ErrorType.SIZE_MISMATCH, "the origin's file changed since the partial download")
    if partial is not None and partial[0] != 0:
        raise FetchError(ErrorType.BAD_CONTENT, "the origin sent a part of the file that was not asked for")
    return 0, None, False


def _content_range(resp: aiohttp.ClientResponse) -> tuple[int, int | None] | None:
    match = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
    if match is None:
        return None
    total = match.group(3)
    return int(match.group(1)), None if total == "*" else int(total)


async def pump(
    resp: aiohttp.ClientResponse,
    sink: Sink,
    *,
    chunk_size: int,
    skip: int,
    take: int | None,
    limit: int | None,
    base: int,
    pace: Pace | None = None,
) -> int:
    """Write the planned part of the body into `sink` (after `base` held bytes); the bytes written."""
    declared = resp.content_length
    if limit is not None and declared is not None and take is None and base + declared > limit:
        raise FetchError(ErrorType.TOO_LARGE, f"the body is {base + declared} bytes, over the {limit} byte limit")
    received = written = 0
    async for chunk in resp.content.iter_chunked(chunk_size):
        received += len(chunk)
        if pace is not None:
            pace.observe(received)
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        data = chunk[skip:] if skip else chunk
        skip = 0
        if take is not None and written + len(data) >= take:
            await sink_call(sink.write(data[: take - written]))
            # The range is complete; the rest of an origin's full answer is not needed.
            return take
        if limit is not None and base + written + len(data) > limit:
            raise FetchError(ErrorType.TOO_LARGE, f"the body exceeds the {limit} byte limit")
        await sink_call(sink.write(data))
        written += len(data)
    if take is not None or (declared is not None and received != declared):
        expected = take if take is not None else declared
        raise FetchError(ErrorType.TRUNCATED, f"the body ended after {written} of {expected} bytes", retryable=True)
    return written


class Pace:
    """A minimum transfer rate over a window: an origin that trickles (a byte every few seconds never trips
    the read timeout) is aborted like a timeout, so the attempt is retried and a slot is not held forever."""

    def __init__(self, min_rate: float, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._min_rate, self._window, self._clock = min_rate, window, clock
        self._start, self._bytes = clock(), 0

    def observe(self, received: int) -> None:
        now = self._clock()
        elapsed = now - self._start
        if elapsed < self._window:
            return
        rate = (received - self._bytes) / elapsed
        if rate < self._min_rate:
            raise FetchError(
                ErrorType.TIMEOUT,
                f"the transfer was slower than {self._min_rate:.0f} B/s over {elapsed:.0f}s ({rate:.1f} B/s)",
                retryable=True,
            )
        self._start, self._bytes = now, received


async def sink_call(step: Awaitable[None]) -> None:
    """Disk errors are ours, not the network's: never retried as if the origin had reset."""
    try:
        await step
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise FetchError(ErrorType.DISK_FULL, f"the disk is full: {exc.strerror or exc}") from exc
        raise FetchError(ErrorType.IO, f"writing the file failed: {exc.strerror or exc}") from exc
