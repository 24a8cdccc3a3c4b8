"""Walk every page of a list call: the iterate-all helpers behind iter_tasks, iter_failures and friends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from clients.models import Page

T = TypeVar("T")

ALL_PAGES_SIZE = 100  # the server's maximum: fewest round trips


async def every_item(fetch: Callable[[str], Awaitable[Page[T]]]) -> AsyncIterator[T]:
    """Yield the items of each page in turn; `fetch(page_token)` returns one page."""
    token = ""
    while True:
        page = await fetch(token)
        for item in page.items:
            yield item
        if not page.next_page_token:
            return
        token = page.next_page_token
