"""Input rules of API.md as reusable checks that collect field violations (never a database error)."""

from __future__ import annotations

import math
import re
import uuid

from download_server.domain.ports import UrlChecker
from download_server.domain.urls import MAX_URL_LENGTH, UrlRefused
from mediadl_common.errors import InvalidArgument, Validator

MAX_TITLE = 255
MAX_LIVEROOM_ID = 20
MAX_ERROR_TYPE = 64
MAX_ERROR_MESSAGE = 4096
MAX_FILE_PATH = 1024
# C0 and C1 controls (NUL included), DEL, and the bidirectional embeddings, overrides and isolates that
# make a name display as something else. PostgreSQL refuses NUL in text while SQLite stores it: refused here,
# before any database sees them, every database gives the same answer.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_MULTILINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def canonical_uuid(value: str) -> str | None:
    """The lower-case canonical form of a hyphenated UUID, or None if `value` is not one."""
    if not _UUID.fullmatch(value):
        return None
    return str(uuid.UUID(value))


def require_uuid(value: str, field: str) -> str:
    """A single id argument: canonical UUID or INVALID_ARGUMENT naming the field."""
    checked = canonical_uuid(value)
    if checked is None:
        raise InvalidArgument.field(field, "must be a UUID" if value else "is required")
    return checked


def check_uuid(v: Validator, value: str, field: str) -> str:
    checked = canonical_uuid(value)
    v.check(checked is not None, field, "must be a UUID" if value else "is required")
    return checked or value


def check_text(v: Validator, value: str, field: str, *, multiline: bool = False) -> bool:
    """No control characters or bidirectional overrides (`multiline` text may hold newlines and tabs)."""
    found = (_CONTROL_MULTILINE if multiline else _CONTROL).search(value)
    if found is not None:
        v.check(False, field, f"must not contain control or bidirectional-override characters (U+{ord(found[0]):04X})")
    return found is None


def check_length(
    v: Validator, value: str, field: str, *, maximum: int, minimum: int = 0, multiline: bool = False
) -> None:
    if not check_text(v, value, field, multiline=multiline):
        return
    if minimum > 0 and not value.strip():
        v.check(False, field, "is required")
    elif len(value) > maximum or len(value) < minimum:
        span = f"{minimum} to {maximum}" if minimum else f"at most {maximum}"
        v.check(False, field, f"must be {span} characters long (got {len(value)})")


def check_finite(v: Validator, value: float, field: str, *, minimum: float = 0.0) -> None:
    v.check(math.isfinite(value) and value >= minimum, field, f"must be a finite number >= {minimum:g}")


async def check_url_field(v: Validator, value: str, field: str, checker: UrlChecker, *, required: bool) -> None:
    """Length and scheme first (cheap, no I/O), then the URL policy, which may resolve the host."""
    if not value:
        v.check(not required, field, "is required")
        return
    if not check_text(v, value, field):
        return
    if len(value) > MAX_URL_LENGTH:
        v.check(False, field, f"must be at most {MAX_URL_LENGTH} characters long (got {len(value)})")
        return
    try:
        await checker(value)
    except UrlRefused as refused:
        v.check(False, field, refused.message)
