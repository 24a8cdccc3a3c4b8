"""HTTP errors of the dashboard's JSON API, and the one table turning client errors into HTTP statuses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from clients import (
    AlreadyExistsError,
    AuthenticationError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    MediadlError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnavailableError,
)

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Most specific first: DeadlineExceededError is an UnavailableError.
_STATUS_BY_ERROR: tuple[tuple[type[MediadlError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (FailedPreconditionError, 409),
    (InvalidArgumentError, 400),
    (ResourceExhaustedError, 429),
    (DeadlineExceededError, 504),
    (UnavailableError, 503),
)


class ApiError(Exception):
    """An error answer: HTTP status, a machine code, a human message and optional field violations."""

    def __init__(self, status: int, code: str, message: str, fields: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    @classmethod
    def field(cls, name: str, description: str) -> ApiError:
        return cls(400, "INVALID_ARGUMENT", f"{name} {description}", ((name, description),))

    @classmethod
    def from_client(cls, error: MediadlError) -> ApiError:
        status = next((s for kind, s in _STATUS_BY_ERROR if isinstance(error, kind)), 502)
        fields: tuple[tuple[str, str], ...] = ()
        if isinstance(error, InvalidArgumentError):
            fields = tuple((v.field, v.description) for v in error.field_violations)
        return cls(status, error.code, error.message, fields)

    def response(self) -> web.Response:
        body = {
            "error": {
                "code": self.code,
                "message": self.message,
                "fields": [{"field": name, "description": text} for name, text in self.fields],
            }
        }
        return web.json_response(body, status=self.status)


NOT_LOGGED_IN = ApiError(401, "UNAUTHENTICATED", "not logged in (or the session has expired)")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ApiError and client errors become JSON answers; anything unexpected a clean 500 with the stack logged."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except MediadlError as exc:
        return ApiError.from_client(exc).response()
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return ApiError(500, "INTERNAL", "internal error in the dashboard").response()
