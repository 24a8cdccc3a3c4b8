"""Live HLS: where each playlist refresh goes (gaps, resets), and the poll loop with its outage grace."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from download_server.domain.models import Segment
from download_server.engine.failures import FetchError
from download_server.engine.jobs import memory
from download_server.engine.jobs.hls_playlist import MediaPlaylist, RemoteSegment
from download_server.engine.jobs.ledger import RunLedger
from download_server.engine.jobs.work import WorkQueue
from mediadl_common.errors import NotFound

log = logging.getLogger(__name__)

# A forward jump of the media sequence is taken as media lost only while it is plausible: an origin cannot
# have produced more media than the wall time since the last answer (plus its window and this slack) allows.
# Beyond that it is an encoder that restarted with other numbers: a discontinuity, nothing lost.
JUMP_SLACK_SECONDS = 60.0
# The longest wait between two polls during an outage (never past the end of the grace).
MAX_BACKOFF_SECONDS = 10.0
# How often a drained live recording hands the allocator's free memory back (issue 15: the catch-up of a
# 100k-entry window left 15-20 MiB free but held in glibc's per-thread arenas; one trim takes milliseconds).
TRIM_SECONDS = 60.0


@dataclass(frozen=True)
class Cursor:
    """The last media sequence placed, and the local index it got."""

    sequence: int
    index: int


@dataclass(frozen=True)
class Gap:
    first_index: int
    first_sequence: int
    last_sequence: int
    seconds: float  # estimated from the target duration: the lost segments were never listed to us

    @property
    def count(self) -> int:
        return self.last_sequence - self.first_sequence + 1


@dataclass(frozen=True)
class Known:
    """What a placement without a cursor needs of the stored plan: where each stored identity sits, and
    the last local index (a run does not hold its finished segments)."""

    anchors: Mapping[tuple[str, int | None, int | None], int]
    last_index: int = -1


@dataclass(frozen=True)
class Placement:
    new: list[tuple[int, RemoteSegment]]  # (local index, remote segment), in order
    cursor: Cursor | None
    gap: Gap | None = None
    reset: bool = False  # the sequence went back or jumped: the first new segment starts a discontinuity


def place(cursor: Cursor | None, source: MediaPlaylist, known: Known, elapsed: float) -> Placement:
    """Where the refreshed playlist's segments go. Local index = media sequence - base; the base only moves
    on a reset (then the new segments follow the last known index), so nothing is fetched or written twice."""
    remote = source.segments
    if not remote:
        return Placement([], cursor)
    if cursor is None:
        return _after(remote, _anchored_base(remote, known), known.last_index)
    last_index = cursor.index  # the last placed segment: no walk over a long recording's every segment
    first, last = remote[0].sequence, remote[-1].sequence
    base = cursor.sequence - cursor.index
    if last < cursor.sequence:
        return _reset(remote, last_index)
    if first > cursor.sequence + 1:
        lost = first - cursor.sequence - 1
        seconds = lost * max(source.target_duration, 0.001)
        window = sum(r.duration for r in remote)
        if seconds > 2 * (elapsed + window) + JUMP_SLACK_SECONDS:
            return _reset(remote, last_index)
        placement = _after(remote, base, last_index)
        gap = Gap(cursor.index + 1, cursor.sequence + 1, first - 1, round(seconds, 3))
        return Placement(placement.new, placement.cursor, gap=gap)
    return _after(remote, base, last_index)


def _anchored_base(remote: list[RemoteSegment], known: Known) -> int:
    """No cursor (a first plan, or a resume): anchor on a segment both know; without common ground (we
    fell behind the window meanwhile) leave a gap of one index, so the playlist marks a discontinuity."""
    identities = known.anchors
    anchor = next((r for r in remote if r.identity in identities), None)
    if anchor is not None:
        return anchor.sequence - identities[anchor.identity]
    if known.last_index >= 0:
        return remote[0].sequence - (known.last_index + 2)
    return remote[0].sequence


def _after(remote: list[RemoteSegment], base: int, last_index: int) -> Placement:
    new = [(r.sequence - base, r) for r in remote if r.sequence - base > last_index]
    tail = remote[-1]
    return Placement(new, Cursor(tail.sequence, tail.sequence - base))


def _reset(remote: list[RemoteSegment], last_index: int) -> Placement:
    base = remote[0].sequence - (last_index + 1)
    placement = _after(remote, base, last_index)
    return Placement(placement.new, placement.cursor, reset=True)


def listed(cursor: Cursor | None, source: MediaPlaylist) -> range | None:
    """The local indexes the refreshed playlist still lists (what a final sweep may fetch again)."""
    if cursor is None:
        return None
    base = cursor.sequence - cursor.index
    first = source.listed_from
    if first is None:
        first = source.segments[0].sequence if source.segments else cursor.sequence + 1
    return range(first - base, cursor.index + 1)


def within_limit(limit_seconds: float, recorded: float, new: list[Segment]) -> tuple[list[Segment], bool]:
    """The new segments a max_duration_seconds allows (taken while less than the limit is recorded), and
    whether the limit is reached. 0: no limit."""
    if limit_seconds <= 0:
        return new, False
    kept = []
    for segment in new:
        if recorded >= limit_seconds:
            break
        kept.append(segment)
        recorded += segment.duration
    return kept, recorded >= limit_seconds


Loader = Callable[[str], Awaitable[MediaPlaylist]]
Merger = Callable[[MediaPlaylist, float], Awaitable[list[Segment]]]


class LiveFollower:
    """Polls a live playlist every target duration until ENDLIST, the max duration, or an outage longer
    than the grace; picks up a resource_url swapped meanwhile (a refreshed signed URL) at the next poll."""

    def __init__(self, ctx: RunLedger, load: Loader, merge: Merger, limit_reached: Callable[[], bool]) -> None:
        self.ctx = ctx
        self._load = load
        self._merge = merge
        self._limit_reached = limit_reached
        self._followed = ctx.task.resource_url
        self._swapped: str | None = None  # a swapped URL not yet answered: polled until it answers
        self._clock = time.monotonic
        self._trimmed = -TRIM_SECONDS  # the first drained poll trims (after the catch-up, for one)

    async def follow(self, source: MediaPlaylist, queue: WorkQueue) -> None:
        grace = self.ctx.parts.settings.live_outage_seconds
        last_change = last_answer = self._clock()
        quiet = 0  # polls since the last new segment (errors or an unchanged playlist)
        while not source.endlist and not self._limit_reached():
            waited = self._clock() - last_change
            await asyncio.sleep(self._delay(source, quiet, max(0.0, grace - waited)))
            waited = self._clock() - last_change
            try:
                source = await self._load(await self._url(source))
                self._swapped = None
            except FetchError as exc:
                quiet += 1
                if self._give_up(waited, grace, f"stopped answering ({exc.message})"):
                    return
                self._say(f"live playlist {_short(exc)} for {waited:.0f} s of {grace:.0f}")
                continue
            now = self._clock()
            new = await self._merge(source, now - last_answer)
            last_answer = now
            if new:  # stored PENDING: the workers read them from the store
                await queue.extend(self.ctx.plan.last_index)
            await self._give_back(queue, now)
            if new:
                if quiet > 1:
                    self._say("")  # the outage is over: its countdown no longer applies
                last_change, quiet = now, 0
                continue
            quiet += 1
            if self._give_up(waited, grace, "stopped changing"):
                return
            if quiet > 1:
                self._say(f"live playlist unchanged for {waited:.0f} s of {grace:.0f}")
        if self._limit_reached():
            limit = self.ctx.task.max_duration_seconds
            self._say(f"recorded the {limit} s of max_duration_seconds; recording ended")

    async def _give_back(self, queue: WorkQueue, now: float) -> None:
        """Once the work is drained (the catch-up done), and then once a minute, return the allocator's free
        memory: a long recording must not keep its peaks for its whole life."""
        if queue.left() <= self.ctx.parts.settings.segment_concurrency and now - self._trimmed >= TRIM_SECONDS:
            self._trimmed = now
            await asyncio.to_thread(memory.release_free_memory)

    def _delay(self, source: MediaPlaylist, quiet: int, left: float) -> float:
        settings = self.ctx.parts.settings
        interval = settings.live_poll_interval or max(1.0, source.target_duration)
        if quiet == 0:
            return interval
        if quiet == 1:
            return interval / 2  # unchanged once: RFC 8216 says poll again after half the target duration
        # An outage: back off, but poll at least once more right at the end of the grace.
        ceiling = max(interval, min(MAX_BACKOFF_SECONDS, settings.live_outage_seconds / 6))
        return max(0.0, min(interval * 2.0 ** (quiet - 1), ceiling, left))

    async def _url(self, source: MediaPlaylist) -> str:
        """The playlist to poll: the one followed so far, or the task's resource_url if the user swapped it."""
        try:
            stored = await self.ctx.store.get_task(self.ctx.task.id)
        except NotFound:
            return source.url  # being deleted: the run is stopped in a moment
        if stored.resource_url == self._followed:
            return self._swapped or source.url
        self._followed = self._swapped = self.ctx.task.resource_url = stored.resource_url
        log.info("live recording follows a swapped resource_url", extra={"task_id": self.ctx.task.id})
        self._say("following the new resource_url")
        return stored.resource_url

    def _give_up(self, waited: float, grace: float, why: str) -> bool:
        if waited < grace:
            return False
        self._say(f"the live playlist {why} for {grace:.0f} s; recording ended")
        return True

    def _say(self, message: str) -> None:
        self.ctx.tracker.message = message


def _short(error: FetchError) -> str:
    """'404', '403', 'timeout': what an outage event names."""
    return str(error.http_status) if error.http_status else error.error_type.value
