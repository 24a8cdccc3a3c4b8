"""FetchError: one classified failure (what went wrong, HTTP status, attempts) ready to become a failure record."""

from __future__ import annotations

import asyncio
import enum
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from download_server.engine.guard import AddressRefused


class ErrorType(enum.StrEnum):
    """The `error_type` of failure records: stable strings that clients may match on."""

    TIMEOUT = "timeout"
    CONNECTION = "connection_error"
    DNS = "dns_error"
    TLS = "tls_error"
    TRUNCATED = "truncated"
    HTTP = "http_error"
    TOO_LARGE = "too_large"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    URL_REFUSED = "url_refused"
    BAD_CONTENT = "bad_content"
    SIZE_MISMATCH = "size_mismatch"
    PLAYLIST = "playlist_error"
    UNSUPPORTED_ENCRYPTION = "unsupported_encryption"
    BAD_KEY = "bad_key"
    DECRYPT = "decrypt_error"
    IO = "io_error"
    DISK_FULL = "disk_full"
    INTERNAL = "internal_error"


# Messages reach failure records, GetTask's last_error and the logs: an origin must not fill them (aiohttp
# quotes a malformed response's bytes in its exception, ~100 KB of binary for one bad segment).
MAX_MESSAGE_CHARS = 300


class FetchError(Exception):
    """Why a resource or segment could not be fetched; `retryable` says whether another attempt may pass."""

    def __init__(
        self,
        error_type: ErrorType,
        message: str,
        *,
        http_status: int = 0,
        attempts: int = 0,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 3] + "..."
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.http_status = http_status
        self.attempts = attempts
        self.retryable = retryable
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"FetchError({self.error_type.value!r}, {self.message!r}, http_status={self.http_status})"


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
