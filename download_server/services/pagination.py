"""Page sizes, order_by parsing and signed page tokens bound to the caller and the query they continue."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from download_server.domain.listing import Cursor, Ordering, Page, SortField
from mediadl_common.errors import FieldViolation, InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ORDERINGS = {
    "create_time desc": Ordering(SortField.CREATE_TIME, descending=True),
    "create_time": Ordering(SortField.CREATE_TIME, descending=False),
    "update_time desc": Ordering(SortField.UPDATE_TIME, descending=True),
    "update_time": Ordering(SortField.UPDATE_TIME, descending=False),
}
_BAD_TOKEN = "is invalid, was altered, or belongs to another query or caller; start again without it"


@dataclass(frozen=True)
class Listing(Generic[T]):
    """What a List RPC returns: the items, the token of the next page ("" on the last), the filtered total."""

    items: list[T]
    next_page_token: str
    total_size: int


def parse_order_by(text: str) -> Ordering:
    """`create_time desc` (default, also for ""), `create_time`, `update_time desc` or `update_time`."""
    normalized = " ".join(text.split())
    if not normalized:
        return Ordering()
    ordering = _ORDERINGS.get(normalized)
    if ordering is None:
        choices = ", ".join(f"'{key}'" for key in _ORDERINGS)
        raise InvalidArgument.field("order_by", f"must be one of {choices}")
    return ordering


class PageTokens:
    """Opaque, tamper-evident page tokens.

    A token is the keyset cursor plus an HMAC-SHA256 over the cursor *and* the query's scope (caller,
    method, filters, order). The scope is not in the token, only in the MAC: a token altered, or replayed
    by another user or with other filters, fails verification. The key is derived from the JWT secret with
    a label, so the secret itself never signs anything but tokens.
    """

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"mediadl page-token v1", hashlib.sha256).digest()

    def _mac(self, scope: str, payload: bytes) -> bytes:
        return hmac.new(self._key, scope.encode() + b"\x00" + payload, hashlib.sha256).digest()

    def encode(self, scope: str, cursor: Cursor) -> str:
        micros = (cursor.time - _EPOCH) // _MICROSECOND
        payload = json.dumps([micros, cursor.id], separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(scope, payload))}"

    def decode(self, token: str, scope: str) -> Cursor | None:
        """The cursor a token carries, None for "" (the first page); InvalidArgument on page_token otherwise."""
        if not token:
            return None
        try:
            encoded_payload, _, encoded_mac = token.partition(".")
            payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
        except (ValueError, binascii.Error):
            raise InvalidArgument.field("page_token", _BAD_TOKEN) from None
        if not hmac.compare_digest(mac, self._mac(scope, payload)):
            raise InvalidArgument.field("page_token", _BAD_TOKEN)
        micros, ident = json.loads(payload)
        return Cursor(time=_EPOCH + timedelta(microseconds=int(micros)), id=str(ident))


def scope_of(method: str, user_id: str, *filters: object) -> str:
    """The canonical description of a query a token may continue."""
    return json.dumps([method, user_id, *filters], separators=(",", ":"), sort_keys=True)


async def paginate(
    tokens: PageTokens,
    scope: str,
    page_size: int,
    page_token: str,
    fetch: Callable[[Cursor | None, int], Awaitable[Page[T]]],
) -> Listing[T]:
    """Validate size and token together, fetch one page, and sign where the next one starts."""
    violations: list[FieldViolation] = []
    if page_size < 0:
        violations.append(FieldViolation("page_size", f"must not be negative (0 means {DEFAULT_PAGE_SIZE})"))
    try:
        cursor = tokens.decode(page_token, scope)
    except InvalidArgument as exc:
        violations.extend(exc.violations)
    if violations:
        raise InvalidArgument(violations)
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    page = await fetch(cursor, size)
    token = tokens.encode(scope, page.next_cursor) if page.next_cursor is not None else ""
    return Listing(page.items, token, page.total_size)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("empty or non-ASCII token part")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
