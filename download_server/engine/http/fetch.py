"""The one HTTP client of the process: guarded hops, bounded bodies, classified errors, retries with backoff."""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver

from download_server.engine.errors import ErrorType, FetchError, classify_exception, parse_retry_after
from download_server.engine.files import BufferSink, Sink
from download_server.engine.guard import GuardedResolver, UrlGuard
from download_server.engine.url_policy import UrlRefused

T = TypeVar("T")
log = logging.getLogger(__name__)
MiB = 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})  # no space, or the quota of the server's user is spent


@dataclass(frozen=True)
class FetchSettings:
    """Timeouts, retry policy and body bounds. Defaults suit production; tests shrink the waits."""

    connect_timeout: float = 10.0
    # Longest silence while reading headers or body; a stalled origin fails the attempt, which is retried.
    read_timeout: float = 30.0
    # Whole-request deadline for small bodies (playlists, keys, images); big files have only read_timeout.
    small_total_timeout: float = 60.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 10.0
    # Retry-After is honoured up to this many seconds, so one origin cannot park a job for an hour.
    retry_after_max: float = 30.0
    max_redirects: int = 10
    connection_limit: int = 100
    chunk_size: int = 256 * 1024
    # Body bounds. A playlist of 8 MiB is ~100k segments; an AES-128 key is 16 bytes (64 leaves room for
    # nothing but a mistake); images are rarely above a few MiB.
    playlist_max_bytes: int = 8 * MiB
    key_max_bytes: int = 64
    init_max_bytes: int = 16 * MiB
    image_max_bytes: int = 50 * MiB
    segment_max_bytes: int = 1024 * MiB
    user_agent: str = "mediadl/0.1"


@dataclass(frozen=True)
class Fetched:
    final_url: str
    status: int
    content_type: str
    attempts: int
    size: int
    body: bytes = b""


ResponseCheck = Callable[[aiohttp.ClientResponse], None]


class Fetcher:
    """One aiohttp session per process (created on first use, closed by close()), shared by every job."""

    def __init__(
        self,
        settings: FetchSettings,
        guard: UrlGuard,
        *,
        resolver: AbstractResolver | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        on_retry: Callable[[FetchError], None] | None = None,
    ) -> None:
        self.settings = settings
        self.guard = guard
        self._resolver = resolver
        self._sleep = sleep
        self._jitter = jitter
        self._on_retry = on_retry
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            s = self.settings
            connector = aiohttp.TCPConnector(
                limit=s.connection_limit, resolver=GuardedResolver(self.guard, self._resolver), ttl_dns_cache=10
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, connect=s.connect_timeout, sock_read=s.read_timeout),
                # Raw bytes: segment hashes and Content-Length checks are about what was on the wire.
                auto_decompress=False,
                headers={"User-Agent": s.user_agent, "Accept-Encoding": "identity"},
                # Many users' jobs share this session: a cookie set for one must never ride on another's request.
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch_bytes(self, url: str, *, max_bytes: int) -> Fetched:
        """A small body (playlist, key) held in memory, refused past max_bytes."""
        sink = BufferSink()
        result = await self.download(url, sink, max_bytes=max_bytes, small=True)
        return Fetched(result.final_url, result.status, result.content_type, result.attempts, result.size, sink.body)

    async def download(
        self,
        url: str,
        sink: Sink,
        *,
        byterange: tuple[int, int] | None = None,
        max_bytes: int | None = None,
        check: ResponseCheck | None = None,
        expected_total: int = 0,
        small: bool = False,
    ) -> Fetched:
        """Stream `url` (or the byte range (offset, length) of it) into `sink`, retrying what may pass later.

        A sink holding bytes is continued with `Range: bytes=<held>-`; an origin that answers 200 instead
        of 206 (or a 206 for another file: total differs from expected_total) restarts it from zero.
        """
        s = self.settings
        request_timeout = aiohttp.ClientTimeout(
            total=s.small_total_timeout if small else None, connect=s.connect_timeout, sock_read=s.read_timeout
        )

        async def attempt() -> Fetched:
            held = 0 if byterange is not None else sink.held()
            headers: dict[str, str] = {}
            if byterange is not None:
                headers["Range"] = f"bytes={byterange[0]}-{byterange[0] + byterange[1] - 1}"
            elif held:
                headers["Range"] = f"bytes={held}-"
            try:
                async with self._open(url, headers, request_timeout) as resp:
                    if check is not None:
                        check(resp)
                    skip, take, keep = _plan_body(resp, byterange, held, expected_total)
                    await _sink_call(sink.begin(keep=keep))
                    base = held if keep else 0
                    written = await self._pump(resp, sink, skip=skip, take=take, limit=max_bytes, base=base)
                    content_type = resp.headers.get("Content-Type", "")
                    status, final_url = resp.status, str(resp.url)
                await _sink_call(sink.commit())
            except FetchError as exc:
                sink.abort()
                if held and (exc.http_status == 416 or exc.error_type is ErrorType.SIZE_MISMATCH):
                    # What we hold no longer fits the origin's file: drop it and start over next attempt.
                    await _sink_call(sink.begin(keep=False))
                    sink.abort()
                    exc.retryable = True
                raise
            except BaseException:
                sink.abort()
                raise
            return Fetched(final_url, status, content_type, 0, base + written)

        result = await self._retrying(url, attempt)
        return result

    async def _retrying(self, url: str, attempt: Callable[[], Awaitable[Fetched]]) -> Fetched:
        for number in range(1, self.settings.max_attempts + 1):
            try:
                result = await attempt()
            except FetchError as exc:
                error = exc
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = classify_exception(exc)
            else:
                return Fetched(result.final_url, result.status, result.content_type, number, result.size)
            if not error.retryable or number == self.settings.max_attempts:
                error.attempts = number
                raise error
            if self._on_retry is not None:
                self._on_retry(error)
            delay = self._backoff(number, error.retry_after)
            log.info(
                "retrying %s in %.2fs (attempt %d of %d failed: %s, HTTP %d)",
                url,
                delay,
                number,
                self.settings.max_attempts,
                error.error_type.value,
                error.http_status,
            )
            await self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        ceiling = min(s.backoff_max, s.backoff_base * 2.0 ** (attempt - 1))
        # "Equal jitter": never less than half the step, so a retry storm still spreads out.
        delay = ceiling / 2 + self._jitter() * ceiling / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, s.retry_after_max))
        return delay

    @asynccontextmanager
    async def _open(
        self, url: str, headers: dict[str, str], request_timeout: aiohttp.ClientTimeout
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET with redirects followed by hand, each target checked by the guard before it is contacted."""
        current = url
        for _hop in range(self.settings.max_redirects + 1):
            try:
                await self.guard.check(current)
            except UrlRefused as exc:
                raise FetchError(ErrorType.URL_REFUSED, exc.message) from None
            resp = await self._client().get(current, headers=headers, allow_redirects=False, timeout=request_timeout)
            try:
                location = resp.headers.get("Location")
                if resp.status in _REDIRECTS and location:
                    current = urljoin(current, location)
                    continue
                _raise_for_status(resp)
                yield resp
                return
            finally:
                resp.release()
        raise FetchError(ErrorType.TOO_MANY_REDIRECTS, f"more than {self.settings.max_redirects} redirects")

    async def _pump(
        self, resp: aiohttp.ClientResponse, sink: Sink, *, skip: int, take: int | None, limit: int | None, base: int
    ) -> int:
        declared = resp.content_length
        if limit is not None and declared is not None and take is None and base + declared > limit:
            raise FetchError(ErrorType.TOO_LARGE, f"the body is {base + declared} bytes, over the {limit} byte limit")
        received = written = 0
        async for chunk in resp.content.iter_chunked(self.settings.chunk_size):
            received += len(chunk)
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            data = chunk[skip:] if skip else chunk
            skip = 0
            if take is not None and written + len(data) >= take:
                await _sink_call(sink.write(data[: take - written]))
                # The range is complete; the rest of an origin's full answer is not needed.
                return take
            if limit is not None and base + written + len(data) > limit:
                raise FetchError(ErrorType.TOO_LARGE, f"the body exceeds the {limit} byte limit")
            await _sink_call(sink.write(data))
            written += len(data)
        if take is not None or (declared is not None and received != declared):
            expected = take if take is not None else declared
            raise FetchError(ErrorType.TRUNCATED, f"the body ended after {written} of {expected} bytes", retryable=True)
        return written


def _plan_body(
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


def _raise_for_status(resp: aiohttp.ClientResponse) -> None:
    if 200 <= resp.status < 300:
        return
    retryable = resp.status in (408, 429) or resp.status >= 500
    raise FetchError(
        ErrorType.HTTP,
        f"HTTP {resp.status} {resp.reason or ''}".strip(),
        http_status=resp.status,
        retryable=retryable,
        retry_after=parse_retry_after(resp.headers.get("Retry-After")) if retryable else None,
    )


async def _sink_call(step: Awaitable[None]) -> None:
    """Disk errors are ours, not the network's: never retried as if the origin had reset."""
    try:
        await step
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise FetchError(ErrorType.DISK_FULL, f"the disk is full: {exc.strerror or exc}") from exc
        raise FetchError(ErrorType.IO, f"writing the file failed: {exc.strerror or exc}") from exc
