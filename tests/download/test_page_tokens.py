"""PageTokens and page-size rules without a server: exact cursor round trip, binding to scope and key."""

from __future__ import annotations

import pytest

from download_server.domain.listing import Cursor, Page
from download_server.services.pagination import TOKEN_LABEL, paginate, parse_order_by
from mediadl_common.errors import InvalidArgument
from mediadl_common.page_tokens import PageTokens, scope_of
from tests.download.helpers import at, new_id

SECRET = "p" * 48


def test_cursor_round_trips_to_the_microsecond() -> None:
    tokens = PageTokens(SECRET, TOKEN_LABEL)
    scope = scope_of("ListTasks", "alice", ["PENDING"], "create_time desc")
    for moment in (at(0), at(0.000001), at(-(10**9))):
        cursor = Cursor(moment, new_id())
        assert tokens.decode(tokens.encode(scope, cursor.time, cursor.id), scope) == (cursor.time, cursor.id)
    assert tokens.decode("", scope) is None


def test_tokens_are_bound_to_scope_and_key() -> None:
    tokens = PageTokens(SECRET, TOKEN_LABEL)
    scope = scope_of("ListTasks", "alice", [], "create_time desc")
    token = tokens.encode(scope, at(0), new_id())
    assert "alice" not in token  # the scope is authenticated, not carried
    for other in (
        scope_of("ListTasks", "bob", [], "create_time desc"),
        scope_of("ListTasks", "alice", ["PENDING"], "create_time desc"),
        scope_of("ListTasks", "alice", [], "create_time"),
        scope_of("ListFailures", "alice", [], "create_time desc"),
    ):
        with pytest.raises(InvalidArgument) as info:
            tokens.decode(token, other)
        assert [v.field for v in info.value.violations] == ["page_token"]
    with pytest.raises(InvalidArgument):
        PageTokens("q" * 48, TOKEN_LABEL).decode(token, scope)
    with pytest.raises(InvalidArgument):  # the auth server's tokens (another label) are not this server's
        PageTokens(SECRET, b"mediadl auth page-token v1").decode(token, scope)


def test_scope_cannot_be_confused_by_separators() -> None:
    assert scope_of("M", "a|b", "c") != scope_of("M", "a", "b|c")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", "create_time desc"), (" create_time  desc ", "create_time desc"), ("update_time", "update_time")],
)
def test_order_by(text: str, expected: str) -> None:
    assert str(parse_order_by(text)) == expected


async def test_paginate_reports_size_and_token_problems_together_and_clamps() -> None:
    tokens = PageTokens(SECRET, TOKEN_LABEL)
    asked: list[int] = []

    async def fetch(cursor: Cursor | None, limit: int) -> Page[int]:
        asked.append(limit)
        return Page(list(range(limit)), None, 1000)

    with pytest.raises(InvalidArgument) as info:
        await paginate(tokens, "s", -5, "bogus", fetch)
    assert {v.field for v in info.value.violations} == {"page_size", "page_token"}
    assert asked == []
    listing = await paginate(tokens, "s", 0, "", fetch)
    assert (len(listing.items), listing.next_page_token, listing.total_size) == (20, "", 1000)
    await paginate(tokens, "s", 101, "", fetch)
    assert asked == [20, 100]


async def test_paginate_hands_fetch_the_cursor_its_token_carries() -> None:
    tokens = PageTokens(SECRET, TOKEN_LABEL)
    after = Cursor(at(5), new_id())
    seen: list[Cursor | None] = []

    async def fetch(cursor: Cursor | None, limit: int) -> Page[int]:
        seen.append(cursor)
        return Page([1], after, 2)

    first = await paginate(tokens, "s", 1, "", fetch)
    await paginate(tokens, "s", 1, first.next_page_token, fetch)
    assert seen == [None, after]
