"""The one table from domain errors to gRPC statuses, with google.rpc ErrorInfo and BadRequest details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from mediadl_common import context as request_context
from mediadl_common.errors import (
    ERROR_DOMAIN,
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

# Every error a use case raises is (a subclass of) one of these; tests/common/test_error_table.py keeps it whole.
# Other exceptions reach a status only through an ErrorTranslator (interceptors.py), or become INTERNAL.
STATUS_CODES: dict[type[DomainError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def status_code_for(error: DomainError) -> grpc.StatusCode:
    """The code of the nearest class in `error`'s MRO that the table names (UNKNOWN if none does)."""
    for cls in type(error).__mro__:
        code = STATUS_CODES.get(cls)  # type: ignore[call-overload]
        if code is not None:
            return code
    return grpc.StatusCode.UNKNOWN


def make_status(
    code: grpc.StatusCode,
    message: str,
    *,
    reason: str | None = None,
    metadata: dict[str, str] | None = None,
    violations: list[tuple[str, str]] | None = None,
    retry_after: float | None = None,
) -> grpc.Status:
    """Build a grpc.Status whose trailers carry google.rpc.Status details (grpcio-status encoding)."""
    details: list[any_pb2.Any] = []
    if reason:
        packed = any_pb2.Any()
        packed.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata or {}))
        details.append(packed)
    if violations:
        packed = any_pb2.Any()
        packed.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations
                ]
            )
        )
        details.append(packed)
    if retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(0, round(retry_after * 1e9)))
        packed = any_pb2.Any()
        packed.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(packed)
    proto = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=details)
    return rpc_status.to_status(proto)


def status_for(error: DomainError) -> grpc.Status:
    violations = [(v.field, v.description) for v in error.violations] if isinstance(error, InvalidArgument) else None
    retry_after = error.retry_after if isinstance(error, ResourceExhausted) else None
    return make_status(
        status_code_for(error), error.message, reason=error.reason, violations=violations, retry_after=retry_after
    )


async def abort(context: grpc.aio.ServicerContext[object, object], status: grpc.Status) -> None:
    """Abort the call with a rich status and the request id in trailers; raises, as grpc.aio's abort does."""
    trailers = tuple(status.trailing_metadata or ())
    rid = request_context.request_id.get()
    if rid is not None:
        # abort() replaces trailers set earlier, so the request id must travel with the status.
        trailers = (*trailers, ("x-request-id", rid))
    await context.abort(status.code, status.details, trailers)
