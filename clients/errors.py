"""The client's exception tree, and the one place where gRPC errors become it.

::

    MediadlError                      every error the client raises on purpose (.code, .message, .reason)
    ├── AuthenticationError           UNAUTHENTICATED, or not logged in (.reason: CREDENTIALS_MISSING/...)
    ├── PermissionDeniedError         PERMISSION_DENIED
    ├── NotFoundError                 NOT_FOUND (also: exists but belongs to someone else)
    ├── AlreadyExistsError            ALREADY_EXISTS
    ├── InvalidArgumentError          INVALID_ARGUMENT (.field_violations)
    ├── FailedPreconditionError       FAILED_PRECONDITION (e.g. a transition the task's state refuses)
    ├── UnavailableError              UNAVAILABLE (retried first by the channel), CANCELLED by the server
    │   └── DeadlineExceededError     DEADLINE_EXCEEDED: no answer within the call's deadline
    ├── ResourceExhaustedError        RESOURCE_EXHAUSTED
    ├── UnimplementedError            UNIMPLEMENTED (an older server)
    └── InternalError                 INTERNAL, UNKNOWN, DATA_LOSS and anything else

Example::

    try:
        task = await client.get_task(task_id)
    except NotFoundError:
        ...
    except InvalidArgumentError as exc:
        for violation in exc.field_violations:
            print(violation.field, violation.description)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

log = logging.getLogger(__name__)

CREDENTIALS_MISSING = "CREDENTIALS_MISSING"
CREDENTIALS_INVALID = "CREDENTIALS_INVALID"
CREDENTIALS_EXPIRED = "CREDENTIALS_EXPIRED"


@dataclass(frozen=True)
class FieldViolation:
    """One refused request field: ``field`` is the API's field name."""

    field: str
    description: str


class MediadlError(Exception):
    """Base of every error the client raises. ``code`` is the gRPC status name, e.g. ``"NOT_FOUND"``."""

    default_code = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.reason = reason
        self.metadata = dict(metadata or {})

    def __str__(self) -> str:
        return self.message


class AuthenticationError(MediadlError):
    """Not logged in, or the server refused the credentials. ``reason`` says which (see API.md)."""

    default_code = "UNAUTHENTICATED"


class PermissionDeniedError(MediadlError):
    default_code = "PERMISSION_DENIED"


class NotFoundError(MediadlError):
    default_code = "NOT_FOUND"


class AlreadyExistsError(MediadlError):
    default_code = "ALREADY_EXISTS"


class InvalidArgumentError(MediadlError):
    """A request field was refused; ``field_violations`` names each one."""

    default_code = "INVALID_ARGUMENT"

    def __init__(self, message: str, *, field_violations: tuple[FieldViolation, ...] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.field_violations = field_violations


class FailedPreconditionError(MediadlError):
    default_code = "FAILED_PRECONDITION"


class UnavailableError(MediadlError):
    default_code = "UNAVAILABLE"


class DeadlineExceededError(UnavailableError):
    default_code = "DEADLINE_EXCEEDED"


class ResourceExhaustedError(MediadlError):
    default_code = "RESOURCE_EXHAUSTED"


class UnimplementedError(MediadlError):
    default_code = "UNIMPLEMENTED"


class InternalError(MediadlError):
    default_code = "INTERNAL"


_BY_CODE: dict[str, type[MediadlError]] = {
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "NOT_FOUND": NotFoundError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "INVALID_ARGUMENT": InvalidArgumentError,
    "OUT_OF_RANGE": InvalidArgumentError,
    "FAILED_PRECONDITION": FailedPreconditionError,
    "ABORTED": FailedPreconditionError,
    "UNAVAILABLE": UnavailableError,
    # A stream cut by the server (it is shutting down): as transient as UNAVAILABLE.
    "CANCELLED": UnavailableError,
    "DEADLINE_EXCEEDED": DeadlineExceededError,
    "RESOURCE_EXHAUSTED": ResourceExhaustedError,
    "UNIMPLEMENTED": UnimplementedError,
}


def from_rpc_error(error: grpc.RpcError) -> MediadlError:
    """Translate a failed call into the exception tree, reading ErrorInfo and BadRequest details."""
    code: str = error.code().name
    message: str = error.details() or code.replace("_", " ").lower()
    reason: str | None = None
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        # Details that disagree with the status are ignored rather than trusted; the code still counts.
        log.debug("ignoring inconsistent google.rpc.Status details on a %s error", code)
        status = None
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason or None, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
    cls = _BY_CODE.get(code, InternalError)
    if cls is InvalidArgumentError:
        return InvalidArgumentError(
            message, code=code, reason=reason, metadata=metadata, field_violations=tuple(violations)
        )
    return cls(message, code=code, reason=reason, metadata=metadata)


def not_logged_in() -> AuthenticationError:
    return AuthenticationError("not logged in", reason=CREDENTIALS_MISSING)
