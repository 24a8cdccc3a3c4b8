"""What aiohttp and the socket layer raise, and Retry-After headers, read as FetchErrors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.http.guard import AddressRefused


def classify_exception(exc: BaseException) -> FetchError:
    """Map what aiohttp and the socket layer raise onto an ErrorType, deciding what is worth retrying."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        if isinstance(exc.os_error, AddressRefused):
            return FetchError(ErrorType.URL_REFUSED, str(exc.os_error))
        return FetchError(ErrorType.DNS, f"the host could not be resolved: {exc.os_error}", retryable=True)
    if isinstance(exc, aiohttp.ClientSSLError):
        return FetchError(ErrorType.TLS, f"TLS failed: {exc}")
    # Before OSError: asyncio's and aiohttp's timeouts are OSError subclasses too.
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return FetchError(ErrorType.TIMEOUT, "the origin did not answer in time", retryable=True)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return FetchError(ErrorType.TRUNCATED, f"the body was cut short: {exc}", retryable=True)
    if isinstance(exc, aiohttp.InvalidURL):
        return FetchError(ErrorType.URL_REFUSED, "the URL is not valid")
    if isinstance(exc, aiohttp.ClientResponseError):
        # The fetcher reads statuses itself, so aiohttp raises this only for a response it could not parse
        # (its `status` is the 400 of its parser, not anything the origin sent).
        reason = (str(exc.message).splitlines() or [""])[0][:100]
        return FetchError(ErrorType.BAD_CONTENT, f"the origin sent a malformed HTTP response: {reason}", retryable=True)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return FetchError(ErrorType.CONNECTION, f"the connection failed: {type(exc).__name__}", retryable=True)
    return FetchError(ErrorType.INTERNAL, f"{type(exc).__name__}: {exc}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
