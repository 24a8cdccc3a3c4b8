"""Page sizes, order_by parsing, and one page of a List RPC with its signed token (mediadl_common/page_tokens.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from download_server.domain.listing import Cursor, Ordering, Page, SortField
from mediadl_common.errors import FieldViolation, InvalidArgument
from mediadl_common.page_tokens import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageTokens

T = TypeVar("T")

_ORDERINGS = {
    "create_time desc": Ordering(SortField.CREATE_TIME, descending=True),
    "create_time": Ordering(SortField.CREATE_TIME, descending=False),
    "update_time desc": Ordering(SortField.UPDATE_TIME, descending=True),
    "update_time": Ordering(SortField.UPDATE_TIME, descending=False),
}


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


# The HMAC key's label: this server's tokens mean nothing to the auth server's ListUsers, and back.
TOKEN_LABEL = b"mediadl page-token v1"


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
    cursor = None
    try:
        if (keyset := tokens.decode(page_token, scope)) is not None:
            cursor = Cursor(*keyset)
    except InvalidArgument as exc:
        violations.extend(exc.violations)
    if violations:
        raise InvalidArgument(violations)
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    page = await fetch(cursor, size)
    after = page.next_cursor
    token = tokens.encode(scope, after.time, after.id) if after is not None else ""
    return Listing(page.items, token, page.total_size)
