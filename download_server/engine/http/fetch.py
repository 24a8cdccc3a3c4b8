"""The one HTTP client of the process: guarded hops, bounded bodies, classified errors, retries with backoff."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver

from download_server.domain.urls import UrlRefused
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.sinks import BufferSink, Sink
from download_server.engine.http.body import Pace, plan_body, pump, sink_call
from download_server.engine.http.errors import parse_retry_after
from download_server.engine.http.fetch_settings import FetchSettings
from download_server.engine.http.guard import GuardedResolver, UrlGuard
from download_server.engine.http.retry import Retrier

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


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
        self._retrier = Retrier(settings, sleep=sleep, jitter=jitter, on_retry=on_retry)
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
        of 206 (or a 206 for another file: total differs from expected_total) restarts it from zero. With a
        byte range, a sink holding bytes (a piece of a ranged download, engine/files/pieces.py) is continued
        from `offset + held` to the range's end: a retry after a reset mid-piece asks only for the rest.
        """
        s = self.settings
        request_timeout = aiohttp.ClientTimeout(
            total=s.small_total_timeout if small else None, connect=s.connect_timeout, sock_read=s.read_timeout
        )

        async def attempt() -> Fetched:
            held = sink.held()
            span = None if byterange is None else (byterange[0] + held, byterange[1] - held)
            headers: dict[str, str] = {}
            if span is not None:
                headers["Range"] = f"bytes={span[0]}-{span[0] + span[1] - 1}"
            elif held:
                headers["Range"] = f"bytes={held}-"
            try:
                async with self._open(url, headers, request_timeout) as resp:
                    if check is not None:
                        check(resp)
                    skip, take, keep = plan_body(resp, span, held, expected_total)
                    keep = keep or (span is not None and held > 0)
                    await sink_call(sink.begin(keep=keep))
                    base = held if keep else 0
                    pace = Pace(s.min_rate_bytes, s.min_rate_window) if s.min_rate_bytes > 0 else None
                    written = await pump(
                        resp, sink, chunk_size=s.chunk_size, skip=skip, take=take, limit=max_bytes, base=base, pace=pace
                    )
                    content_type = resp.headers.get("Content-Type", "")
                    status, final_url = resp.status, str(resp.url)
                await sink_call(sink.commit())
            except FetchError as exc:
                sink.abort()
                if held and (exc.http_status == 416 or exc.error_type is ErrorType.SIZE_MISMATCH):
                    # What we hold no longer fits the origin's file: drop it and start over next attempt.
                    await sink_call(sink.begin(keep=False))
                    sink.abort()
                    exc.retryable = True
                raise
            except BaseException:
                sink.abort()
                raise
            return Fetched(final_url, status, content_type, 0, base + written)

        result, attempts = await self._retrier.run(url, attempt)
        return Fetched(result.final_url, result.status, result.content_type, attempts, result.size)

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
