"""Per-call context (request id, caller's user id) carried in context variables, never in handler args."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id: ContextVar[str | None] = ContextVar("user_id", default=None)


def current_user_id() -> str:
    """The authenticated caller; the auth interceptor sets it before any handler runs."""
    value = user_id.get()
    if value is None:
        # Reaching a handler without an authenticated user is a wiring bug, not a client error.
        raise RuntimeError("no authenticated user in this call's context")
    return value
