"""Segment addressing of one MPD representation: SegmentTemplate ($Number$ or $Time$, with or without a
SegmentTimeline), SegmentList, SegmentBase (a sidx to read) or a bare BaseURL, each as a Track of Refs.

A SegmentTimeline's `r` repeats and a $Number$ template's count are charged to the Budget before any
segment is made, so a hostile MPD fails in bounded memory and time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.jobs.mpd_model import Kind, Ref, SidxPlan, Track
from download_server.engine.jobs.mpd_xml import byte_range, child, children, init_attribute, number, ranged, seconds

_IDENTIFIER = re.compile(r"\$(RepresentationID|Number|Bandwidth|Time|)(?:%0(\d{1,2})d)?\$")


@dataclass(frozen=True)
class Clock:
    """Where "now" is on a live presentation's time line (seconds since availabilityStartTime)."""

    dynamic: bool
    root: Element
    now: datetime

    def live_edge(self) -> float | None:
        if not self.dynamic:
            return None
        start = self.root.get("availabilityStartTime")
        if not start:
            return None
        try:
            origin = datetime.fromisoformat(start.strip().replace("Z", "+00:00"))
        except ValueError:
            raise FetchError(ErrorType.BAD_CONTENT, f"bad availabilityStartTime {start[:40]!r}") from None
        if origin.tzinfo is None:
            origin = origin.replace(tzinfo=UTC)
        return (self.now - origin).total_seconds()

    def window(self) -> float | None:
        return seconds(self.root.get("timeShiftBufferDepth"), "timeShiftBufferDepth")


class Budget:
    """The segments one MPD may still plan, over all its periods and tracks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, count: int) -> None:
        self.used += count
        if count < 0 or self.used > self.limit:
            raise FetchError(ErrorType.TOO_LARGE, f"the MPD plans more than {self.limit} segments; refused")


@dataclass(frozen=True)
class Context:
    """One period as its representations' segments see it."""

    base: str
    start: float
    end: float | None
    clock: Clock
    budget: Budget

    @property
    def duration(self) -> float | None:
        return None if self.end is None else max(0.0, self.end - self.start)


@dataclass(frozen=True)
class Representation:
    """The chosen representation: its kind, id, bandwidth and resolved BaseURL."""

    kind: Kind
    id: str
    bandwidth: int
    base: str


def from_base(rep: Representation, segment_base: Element | None, context: Context) -> Track:
    """SegmentBase with an indexRange (the sidx lists the segments), else a bare BaseURL: one segment."""
    if segment_base is not None and segment_base.get("indexRange"):
        index = byte_range(segment_base.get("indexRange"), "SegmentBase@indexRange")
        assert index is not None
        init_range = byte_range(init_attribute(segment_base, "range"), "Initialization@range") or (0, index[0])
        init = ranged(rep.base, init_range) if init_range[1] > 0 else None
        return Track(rep.kind, rep.id, rep.bandwidth, init, [], sidx=SidxPlan(rep.base, index, context.start))
    context.budget.take(1)
    return Track(rep.kind, rep.id, rep.bandwidth, None, [Ref(rep.base, context.start, context.duration or 0.0)])


def _fill(template: str, rep: Representation, number: int | None = None, time: int | None = None) -> str:
    def replace(match: re.Match[str]) -> str:
        name, width = match.group(1), int(match.group(2) or 0)
        if name == "":
            return "$"
        values: dict[str, int | str | None] = {
            "RepresentationID": rep.id,
            "Bandwidth": rep.bandwidth,
            "Number": number,
            "Time": time,
        }
        value = values[name]
        if value is None:
            raise FetchError(ErrorType.BAD_CONTENT, f"the SegmentTemplate uses ${name}$ where it has no value")
        return f"{value:0{width}d}" if isinstance(value, int) else value

    return _IDENTIFIER.sub(replace, template)


def from_template(rep: Representation, template: Element, context: Context) -> Track:
    media = template.get("media")
    if not media:
        raise FetchError(ErrorType.BAD_CONTENT, "a SegmentTemplate without @media")
    timescale = max(1, number(template, "timescale", 1))
    offset = number(template, "presentationTimeOffset", 0)
    first = number(template, "startNumber", 1)
    init_template = template.get("initialization") or init_attribute(template, "sourceURL")
    init = urljoin(rep.base, _fill(init_template, rep)) if init_template else None
    timeline = child(template, "SegmentTimeline")
    refs = []
    if timeline is not None:
        for position, (time, ticks) in enumerate(_timeline(timeline, timescale, offset, context), start=first):
            url = urljoin(rep.base, _fill(media, rep, position, time))
            refs.append(Ref(url, context.start + (time - offset) / timescale, ticks / timescale))
    else:
        ticks = number(template, "duration", 0)
        if ticks <= 0:
            raise FetchError(ErrorType.BAD_CONTENT, "a SegmentTemplate with neither SegmentTimeline nor @duration")
        length = ticks / timescale
        for position in _numbers(length, context):
            # Without a timeline, $Time$ is where the segment starts: its position times the duration.
            url = urljoin(rep.base, _fill(media, rep, first + position, offset + position * ticks))
            refs.append(Ref(url, context.start + position * length, length))
    return Track(rep.kind, rep.id, rep.bandwidth, init, refs)


def _numbers(length: float, context: Context) -> range:
    """Which segments of a $Number$ template exist: the whole period (VOD), or a live MPD's window."""
    edge = context.clock.live_edge()
    if edge is None or context.end is not None:
        duration = context.duration
        if duration is None:
            raise FetchError(ErrorType.BAD_CONTENT, "a $Number$ template in a period of unknown duration")
        count = math.ceil(duration / length - 1e-9)
        context.budget.take(count)
        return range(count)
    # Live: segments whose end is at or before now, back as far as the time-shift window reaches.
    available = math.floor((edge - context.start) / length)
    window = context.clock.window()
    # No timeShiftBufferDepth: the last 30 segments, a minute of 2 s segments (what a live edge player keeps).
    oldest = max(0, available - math.ceil(window / length)) if window is not None else max(0, available - 30)
    context.budget.take(max(0, available - oldest))
    return range(oldest, max(oldest, available))


def _timeline(timeline: Element, timescale: int, offset: int, context: Context) -> Iterator[tuple[int, int]]:
    """(time, duration) in timescale units of each segment, `r` repeats counted before they are expanded
    (a negative `r` repeats up to the next S, the period's end or, live, now)."""
    entries = children(timeline, "S")
    plan: list[tuple[int, int, int]] = []  # (first time, duration, count)
    time = offset
    for position, entry in enumerate(entries):
        time = number(entry, "t", time)
        ticks = number(entry, "d", 0)
        if ticks <= 0:
            raise FetchError(ErrorType.BAD_CONTENT, "a SegmentTimeline S without a positive @d")
        repeat = number(entry, "r", 0)
        if repeat < 0:
            repeat = _open_repeat(entries, position, time, ticks, timescale, offset, context)
        count = repeat + 1
        context.budget.take(count)  # before anything is made: r="1000000000" fails here
        plan.append((time, ticks, count))
        time += ticks * count
    for first, ticks, count in plan:
        for step in range(count):
            yield first + step * ticks, ticks


def _open_repeat(
    entries: list[Element], position: int, time: int, ticks: int, timescale: int, offset: int, context: Context
) -> int:
    if position + 1 < len(entries):
        end = number(entries[position + 1], "t", time)
    else:
        duration = context.duration
        if duration is None:
            edge = context.clock.live_edge()
            duration = None if edge is None else edge - context.start
        if duration is None:
            return 0
        end = offset + math.floor(duration * timescale)
    return max(0, math.ceil((end - time) / ticks) - 1)


def from_list(rep: Representation, listing: Element, context: Context) -> Track:
    """SegmentList: its SegmentURLs, timed by its SegmentTimeline or else its @duration."""
    timescale = max(1, number(listing, "timescale", 1))
    ticks = number(listing, "duration", 0)
    init_url = init_attribute(listing, "sourceURL")
    init_range = byte_range(init_attribute(listing, "range"), "Initialization@range")
    base = rep.base
    init = ranged(urljoin(base, init_url) if init_url else base, init_range) if (init_url or init_range) else None
    entries = children(listing, "SegmentURL")
    context.budget.take(len(entries))
    timeline = child(listing, "SegmentTimeline")
    times = list(_timeline(timeline, timescale, 0, context)) if timeline is not None else []
    refs = []
    for position, entry in enumerate(entries):
        url = urljoin(base, entry.get("media") or "") if entry.get("media") else base
        span = byte_range(entry.get("mediaRange"), "SegmentURL@mediaRange")
        if position < len(times):
            start, length = context.start + times[position][0] / timescale, times[position][1] / timescale
        else:
            start, length = context.start + position * ticks / timescale, ticks / timescale
        refs.append(Ref(url, start, length, span))
    return Track(rep.kind, rep.id, rep.bandwidth, init, refs)
