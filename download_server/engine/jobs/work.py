"""WorkQueue: the segments a run's workers take, read from the store a slice at a time.

A live window of 100,000 entries used to become 100,000 PENDING Segment objects queued at once for the
catch-up; the few objects that outlived them pinned most of the allocator's arenas, so the process kept
the peak long after the catch-up (issue 15). Here the planned rows stay in the database: the queue knows
only the index span planned and not yet handed out, and reads FEED_SLICE PENDING rows of it whenever the
workers have taken the previous slice. What a run holds is then bounded by the slice and the workers, not
by the window.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from download_server.domain.models import Segment

FEED_SLICE = 256  # PENDING rows read per store query: one query per slice, a few kB held
# (after_index, limit) -> up to `limit` PENDING rows with a larger index, in index order
Reader = Callable[[int, int], Awaitable[list[Segment]]]


class WorkQueue:
    """Segments to fetch: `ready` ones first (held by the run: a resume's or a retry's), then the PENDING
    rows with an index in (after, through], where `through` grows as a live poll plans more (`extend`).
    get() answers None once the queue is closed and everything was taken."""

    def __init__(self, read: Reader, after: int, through: int, ready: Iterable[Segment] = ()) -> None:
        self._read = read
        self._slice: deque[Segment] = deque(ready)
        self._after = after  # every planned row up to this index was handed out (or is in `_slice`)
        self._through = max(after, through)
        self._closed = False
        self._changed = asyncio.Condition()

    @property
    def through(self) -> int:
        """The last index this queue was told about: every row up to it was or will be handed out."""
        return self._through

    @property
    def buffered(self) -> int:
        """Segments read from the store (or given as ready) and not handed out yet."""
        return len(self._slice)

    def left(self) -> int:
        """At most how many segments are still to take (the span not read yet counts whole)."""
        return len(self._slice) + self._through - self._after

    async def extend(self, through: int) -> None:
        """Rows up to this index are planned (stored PENDING): hand them out too."""
        async with self._changed:
            if through > self._through:
                self._through = through
                self._changed.notify_all()

    async def close(self) -> None:
        """Nothing more will be planned: a worker that finds the queue empty stops."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    async def get(self) -> Segment | None:
        # One worker reads the next slice while the others wait for it (the condition's lock), so a slice
        # is read once and rows are handed out in index order.
        async with self._changed:
            while True:
                if self._slice:
                    return self._slice.popleft()
                if self._after < self._through:
                    await self._refill()
                    continue
                if self._closed:
                    return None
                await self._changed.wait()

    async def _refill(self) -> None:
        rows = [s for s in await self._read(self._after, FEED_SLICE) if s.index <= self._through]
        self._slice.extend(rows)
        # A short slice means nothing PENDING is left up to `through` (rows past it are a later extend's).
        self._after = rows[-1].index if len(rows) == FEED_SLICE else self._through
