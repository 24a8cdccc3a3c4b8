"""Errors the use cases raise; each server's edge turns them into gRPC statuses (see grpc_status.py)."""

from __future__ import annotations

from dataclasses import dataclass

# ErrorInfo reasons of API.md; clients match on these strings.
CREDENTIALS_MISSING = "CREDENTIALS_MISSING"
CREDENTIALS_INVALID = "CREDENTIALS_INVALID"
CREDENTIALS_EXPIRED = "CREDENTIALS_EXPIRED"
CREDENTIALS_REVOKED = "CREDENTIALS_REVOKED"
ERROR_DOMAIN = "mediadl"
# Messages may quote what the caller sent, which can be up to the request size limit (1 MiB). Status messages
# and details travel in HTTP/2 trailers, and a client drops the whole connection (every call on it) when trailers
# pass its metadata limit (8-16 KiB, percent-encoding can triple the size): so they are clipped, in UTF-8 bytes,
# well below any honest message's need. Log lines get the same clipped text.
MAX_MESSAGE_BYTES = 512
MAX_DESCRIPTION_BYTES = 256


def clip(text: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return text
    return f"{encoded[:limit].decode('utf-8', 'ignore')}... ({len(encoded) - limit} more bytes)"


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "description", clip(self.description, MAX_DESCRIPTION_BYTES))


class DomainError(Exception):
    """Base of the errors a use case raises on purpose; `reason` becomes an ErrorInfo reason."""

    default_reason: str | None = None

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        message = clip(message)
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason


class InvalidArgument(DomainError):
    default_reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation] | FieldViolation, message: str | None = None) -> None:
        self.violations = [violations] if isinstance(violations, FieldViolation) else list(violations)
        text = message or "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(text)

    @classmethod
    def field(cls, name: str, description: str) -> InvalidArgument:
        return cls(FieldViolation(name, description))


class NotFound(DomainError):
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    default_reason = "FAILED_PRECONDITION"


class PermissionDenied(DomainError):
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    default_reason = CREDENTIALS_INVALID


class Unavailable(DomainError):
    default_reason = "UNAVAILABLE"


class ResourceExhausted(DomainError):
    """Too much at once from one caller (login attempts, open streams); the client should back off.

    `retry_after` (seconds), when known, travels as a google.rpc.RetryInfo so clients need not parse the message.
    """

    default_reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, reason: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class Validator:
    """Collects every field violation of a request, so the caller hears about all of them at once."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def check(self, ok: bool, field: str, description: str) -> bool:
        if not ok:
            self.violations.append(FieldViolation(field, description))
        return ok

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidArgument(self.violations)
