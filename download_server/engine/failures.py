"""FetchError: one classified failure (what went wrong, HTTP status, attempts) ready to become a failure record."""

from __future__ import annotations

import enum


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
    QUOTA_EXCEEDED = "quota_exceeded"


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
