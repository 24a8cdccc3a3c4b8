"""Reading a remote MPEG-DASH MPD into plain facts: per period, the best video and audio representation and
their segments (absolute URLs, byte ranges, start times), the init sections, or a sidx still to be read.

Parsed with the standard library's ElementTree through defusedxml: an MPD is origin input, and a DTD with
entities (billion laughs, external entities) is refused before anything is expanded. Every number is checked
before it reaches arithmetic, and a SegmentTimeline's `r` repeats or a $Number$ template's count are summed
before any segment is made, so a hostile MPD fails in bounded memory and time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeXml
from defusedxml import DefusedXmlException

from download_server.engine.failures import ErrorType, FetchError

Kind = Literal["video", "audio"]
KINDS: tuple[Kind, ...] = ("video", "audio")
# Segments one MPD may plan (over all periods and both tracks), the same bound as an HLS playlist's entries.
MAX_SEGMENTS = 100_000
MAX_SECONDS = 366 * 86_400.0  # a duration (period, presentation, time-shift window) past a year is a lie
MAX_BYTES = 2**50
CENC = "encrypted (cenc) not supported"
_DURATION = re.compile(
    r"^(-)?P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_IDENTIFIER = re.compile(r"\$(RepresentationID|Number|Bandwidth|Time|)(?:%0(\d{1,2})d)?\$")


@dataclass(frozen=True)
class Ref:
    """One media segment: where it is, and where it lies on the presentation's time line (seconds)."""

    url: str
    start: float
    duration: float
    byterange: tuple[int, int] | None = None  # (offset, length)

    @property
    def identity(self) -> str:
        """What names the same media across refreshes of a live MPD."""
        return self.url if self.byterange is None else f"{self.url}#{self.byterange[0]}+{self.byterange[1]}"


@dataclass(frozen=True)
class SidxPlan:
    """SegmentBase: the segments are listed by the file's own sidx box, read with a byte-range request."""

    url: str
    index_range: tuple[int, int]  # (offset, length)
    start: float  # the period's start on the presentation time line


@dataclass(frozen=True)
class Track:
    kind: Kind
    representation: str
    bandwidth: int
    init: str | None  # the init section's URL, a byte range riding in a "#mediadl-range=" fragment
    refs: list[Ref]
    sidx: SidxPlan | None = None
    choices: int = 1  # how many representations of this kind the period offered


@dataclass(frozen=True)
class Period:
    start: float
    tracks: dict[Kind, Track]


@dataclass(frozen=True)
class Manifest:
    url: str
    dynamic: bool
    update_period: float  # minimumUpdatePeriod (or a segment's duration) for a live MPD; 0 for VOD
    periods: list[Period] = field(default_factory=list)

    @property
    def segment_duration(self) -> float:
        durations = [r.duration for p in self.periods for t in p.tracks.values() for r in t.refs[-3:]]
        return max(durations, default=2.0)


def parse(body: bytes, url: str, *, now: datetime | None = None, max_segments: int = MAX_SEGMENTS) -> Manifest:
    """The MPD at `url`; FetchError (bad_content, too_large) for anything unsafe, protected or unplayable."""
    root = _root(body)
    _refuse_protection(root)
    dynamic = root.get("type", "static") == "dynamic"
    base = _base(root, url)
    total = _seconds(root.get("mediaPresentationDuration"), "mediaPresentationDuration")
    update = _seconds(root.get("minimumUpdatePeriod"), "minimumUpdatePeriod") or 0.0
    clock = _Clock(dynamic, root, now or datetime.now(UTC))
    budget = _Budget(max_segments)
    elements = _children(root, "Period")
    if not elements:
        raise FetchError(ErrorType.PLAYLIST, "the MPD lists no Period")
    starts = _period_starts(elements, total)
    periods = []
    for position, element in enumerate(elements):
        start, end = starts[position], starts[position + 1] if position + 1 < len(starts) else None
        context = _Context(base=_base(element, base), start=start, end=end, clock=clock, budget=budget)
        tracks = _tracks(element, context)
        if tracks:
            periods.append(Period(start, tracks))
    if not periods:
        raise FetchError(ErrorType.PLAYLIST, "the MPD lists no video or audio representation")
    manifest = Manifest(url, dynamic, update if dynamic else 0.0, periods)
    if dynamic and not update:
        manifest = Manifest(url, dynamic, manifest.segment_duration, periods)
    return manifest


def local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


# Reading the document
def _root(body: bytes) -> Element:
    if len(body) > 0 and b"<" not in body[:4096]:
        raise FetchError(ErrorType.BAD_CONTENT, "not an MPD (no XML)")
    try:
        root = SafeXml.fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise FetchError(
            ErrorType.BAD_CONTENT, f"the MPD declares a DTD or entities, refused ({type(exc).__name__})"
        ) from None
    except SafeXml.ParseError as exc:
        raise FetchError(ErrorType.BAD_CONTENT, f"the MPD is not well-formed XML: {exc}") from None
    if local_name(root.tag) != "MPD":
        raise FetchError(ErrorType.BAD_CONTENT, f"not an MPD (root element {local_name(root.tag)[:40]!r})")
    return root


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if local_name(child.tag) == name]


def _child(element: Element | None, name: str) -> Element | None:
    if element is None:
        return None
    return next((child for child in element if local_name(child.tag) == name), None)


def _refuse_protection(root: Element) -> None:
    """Any ContentProtection (CENC, Widevine, PlayReady, clear key) means the media is encrypted: saving it
    would leave files nothing can play, so the task fails before one byte is fetched."""
    for element in root.iter():
        if local_name(element.tag) == "ContentProtection":
            scheme = (element.get("schemeIdUri") or "").strip()[:80]
            raise FetchError(ErrorType.BAD_CONTENT, f"{CENC} (ContentProtection {scheme})".replace(" ()", ""))


def _base(element: Element, parent: str) -> str:
    """The first BaseURL of an element, resolved against its parent's (the MPD level against the MPD URL)."""
    found = _child(element, "BaseURL")
    if found is None or not (found.text or "").strip():
        return parent
    return urljoin(parent, (found.text or "").strip())


# Time
@dataclass(frozen=True)
class _Clock:
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
        return _seconds(self.root.get("timeShiftBufferDepth"), "timeShiftBufferDepth")


class _Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, count: int) -> None:
        self.used += count
        if count < 0 or self.used > self.limit:
            raise FetchError(ErrorType.TOO_LARGE, f"the MPD plans more than {self.limit} segments; refused")


@dataclass(frozen=True)
class _Context:
    base: str
    start: float
    end: float | None
    clock: _Clock
    budget: _Budget

    @property
    def duration(self) -> float | None:
        return None if self.end is None else max(0.0, self.end - self.start)


def _period_starts(periods: list[Element], total: float | None) -> list[float]:
    starts: list[float] = []
    for position, element in enumerate(periods):
        start = _seconds(element.get("start"), "Period@start")
        if start is None:
            start = 0.0
            if position:
                previous = _seconds(periods[position - 1].get("duration"), "Period@duration")
                start = starts[-1] + (previous or 0.0)
        starts.append(start)
    last = _seconds(periods[-1].get("duration"), "Period@duration")
    if last is not None:
        starts.append(starts[-1] + last)
    elif total is not None:
        starts.append(total)
    return starts


def _seconds(text: str | None, what: str) -> float | None:
    """An xs:duration (PT1H2M3.5S) in seconds; None when absent."""
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    if match is None or match.group(1):
        raise FetchError(ErrorType.BAD_CONTENT, f"bad {what} {text[:40]!r}")
    years, months, days, hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups()[1:])
    seconds = (((years * 365 + months * 30 + days) * 24 + hours) * 60 + minutes) * 60 + secs
    if not (math.isfinite(seconds) and seconds <= MAX_SECONDS):
        raise FetchError(ErrorType.BAD_CONTENT, f"{what} out of range: {text[:40]!r}")
    return seconds


def _number(element: Element | None, name: str, default: int, *, maximum: int = 2**63 - 1) -> int:
    value = element.get(name) if element is not None else None
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise FetchError(ErrorType.BAD_CONTENT, f"bad {name} {value[:40]!r}") from None
    if not -maximum <= number <= maximum:
        raise FetchError(ErrorType.BAD_CONTENT, f"{name} out of range: {value[:40]!r}")
    return number


def _range(text: str | None, what: str) -> tuple[int, int] | None:
    """'first-last' (inclusive, as MPDs write ranges) as (offset, length)."""
    if text is None:
        return None
    first, dash, last = text.strip().partition("-")
    if not (dash and first.isdigit() and last.isdigit()) or int(last) < int(first) or int(last) > MAX_BYTES:
        raise FetchError(ErrorType.BAD_CONTENT, f"bad {what} {text[:40]!r}")
    return int(first), int(last) - int(first) + 1


# Representations
def _kind(adaptation: Element, representation: Element) -> Kind | None:
    for element in (representation, adaptation):
        content = (element.get("contentType") or element.get("mimeType") or "").split("/")[0].strip().lower()
        if content in KINDS:
            return content  # type: ignore[return-value]
    return None


def _tracks(period: Element, context: _Context) -> dict[Kind, Track]:
    """The highest-bandwidth video and audio representation of the period (as the HLS master choice)."""
    best: dict[Kind, tuple[int, Element, Element]] = {}
    counts: dict[Kind, int] = {}
    for adaptation in _children(period, "AdaptationSet"):
        for representation in _children(adaptation, "Representation"):
            kind = _kind(adaptation, representation)
            if kind is None:
                continue
            bandwidth = _number(representation, "bandwidth", 0)
            counts[kind] = counts.get(kind, 0) + 1
            if kind not in best or bandwidth > best[kind][0]:
                best[kind] = (bandwidth, adaptation, representation)
    tracks = {}
    for kind, (bandwidth, adaptation, representation) in best.items():
        track = _track(kind, bandwidth, period, adaptation, representation, context)
        tracks[kind] = Track(
            track.kind, track.representation, bandwidth, track.init, track.refs, track.sidx, counts[kind]
        )
    return tracks


def _track(
    kind: Kind, bandwidth: int, period: Element, adaptation: Element, representation: Element, context: _Context
) -> Track:
    rep_id = (representation.get("id") or "").strip()
    base = _base(representation, _base(adaptation, context.base))
    levels = (representation, adaptation, period)  # the nearest level's element or attribute wins
    template = _merged(levels, "SegmentTemplate")
    if template is not None:
        return _from_template(kind, rep_id, bandwidth, base, template, context)
    listing = _merged(levels, "SegmentList")
    if listing is not None:
        return _from_list(kind, rep_id, base, listing, context)
    segment_base = _merged(levels, "SegmentBase")
    if segment_base is not None and segment_base.get("indexRange"):
        index = _range(segment_base.get("indexRange"), "SegmentBase@indexRange")
        assert index is not None
        init_range = _range(_init_attribute(segment_base, "range"), "Initialization@range") or (0, index[0])
        init = _ranged(base, init_range) if init_range[1] > 0 else None
        return Track(kind, rep_id, bandwidth, init, [], sidx=SidxPlan(base, index, context.start))
    # A bare BaseURL: the whole file is one segment.
    context.budget.take(1)
    return Track(kind, rep_id, bandwidth, None, [Ref(base, context.start, context.duration or 0.0)])


def _merged(levels: tuple[Element, ...], name: str) -> Element | None:
    """One element of that name with the attributes and children inherited down the levels (the spec's rule)."""
    found = [element for element in (_child(level, name) for level in levels) if element is not None]
    if not found:
        return None
    merged = Element(name)
    for element in reversed(found):  # the outer levels first, the nearest last: it overrides
        merged.attrib.update(element.attrib)
        names = {local_name(child.tag) for child in element}
        for old in [child for child in merged if local_name(child.tag) in names]:
            merged.remove(old)
        merged.extend(element)
    return merged


def _init_attribute(element: Element, name: str) -> str | None:
    init = _child(element, "Initialization")
    return init.get(name) if init is not None else None


def _ranged(url: str, byterange: tuple[int, int] | None) -> str:
    if byterange is None:
        return url
    return f"{url}#mediadl-range={byterange[1]}@{byterange[0]}"


def _fill(template: str, rep_id: str, bandwidth: int, number: int | None = None, time: int | None = None) -> str:
    def replace(match: re.Match[str]) -> str:
        name, width = match.group(1), int(match.group(2) or 0)
        if name == "":
            return "$"
        values: dict[str, int | str | None] = {
            "RepresentationID": rep_id,
            "Bandwidth": bandwidth,
            "Number": number,
            "Time": time,
        }
        value = values[name]
        if value is None:
            raise FetchError(ErrorType.BAD_CONTENT, f"the SegmentTemplate uses ${name}$ where it has no value")
        return f"{value:0{width}d}" if isinstance(value, int) else value

    return _IDENTIFIER.sub(replace, template)


def _from_template(kind: Kind, rep_id: str, bandwidth: int, base: str, template: Element, context: _Context) -> Track:
    media = template.get("media")
    if not media:
        raise FetchError(ErrorType.BAD_CONTENT, "a SegmentTemplate without @media")
    timescale = max(1, _number(template, "timescale", 1))
    offset = _number(template, "presentationTimeOffset", 0)
    first = _number(template, "startNumber", 1)
    init_template = template.get("initialization") or _init_attribute(template, "sourceURL")
    init = urljoin(base, _fill(init_template, rep_id, bandwidth)) if init_template else None
    timeline = _child(template, "SegmentTimeline")
    refs = []
    if timeline is not None:
        for number, (time, ticks) in enumerate(_timeline(timeline, timescale, offset, context), start=first):
            url = urljoin(base, _fill(media, rep_id, bandwidth, number, time))
            refs.append(Ref(url, context.start + (time - offset) / timescale, ticks / timescale))
    else:
        ticks = _number(template, "duration", 0)
        if ticks <= 0:
            raise FetchError(ErrorType.BAD_CONTENT, "a SegmentTemplate with neither SegmentTimeline nor @duration")
        length = ticks / timescale
        for position in _numbers(length, context):
            # Without a timeline, $Time$ is where the segment starts: its position times the duration.
            url = urljoin(base, _fill(media, rep_id, bandwidth, first + position, offset + position * ticks))
            refs.append(Ref(url, context.start + position * length, length))
    return Track(kind, rep_id, bandwidth, init, refs)


def _numbers(length: float, context: _Context) -> range:
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


def _timeline(timeline: Element, timescale: int, offset: int, context: _Context) -> Iterator[tuple[int, int]]:
    """(time, duration) in timescale units of each segment, `r` repeats counted before they are expanded
    (a negative `r` repeats up to the next S, the period's end or, live, now)."""
    entries = _children(timeline, "S")
    plan: list[tuple[int, int, int]] = []  # (first time, duration, count)
    time = offset
    for position, entry in enumerate(entries):
        time = _number(entry, "t", time)
        ticks = _number(entry, "d", 0)
        if ticks <= 0:
            raise FetchError(ErrorType.BAD_CONTENT, "a SegmentTimeline S without a positive @d")
        repeat = _number(entry, "r", 0)
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
    entries: list[Element], position: int, time: int, ticks: int, timescale: int, offset: int, context: _Context
) -> int:
    if position + 1 < len(entries):
        end = _number(entries[position + 1], "t", time)
    else:
        duration = context.duration
        if duration is None:
            edge = context.clock.live_edge()
            duration = None if edge is None else edge - context.start
        if duration is None:
            return 0
        end = offset + math.floor(duration * timescale)
    return max(0, math.ceil((end - time) / ticks) - 1)


def _from_list(kind: Kind, rep_id: str, base: str, listing: Element, context: _Context) -> Track:
    timescale = max(1, _number(listing, "timescale", 1))
    ticks = _number(listing, "duration", 0)
    init_url = _init_attribute(listing, "sourceURL")
    init_range = _range(_init_attribute(listing, "range"), "Initialization@range")
    init = _ranged(urljoin(base, init_url) if init_url else base, init_range) if (init_url or init_range) else None
    entries = _children(listing, "SegmentURL")
    context.budget.take(len(entries))
    timeline = _child(listing, "SegmentTimeline")
    times = list(_timeline(timeline, timescale, 0, context)) if timeline is not None else []
    refs = []
    for position, entry in enumerate(entries):
        url = urljoin(base, entry.get("media") or "") if entry.get("media") else base
        byterange = _range(entry.get("mediaRange"), "SegmentURL@mediaRange")
        if position < len(times):
            start, length = context.start + times[position][0] / timescale, times[position][1] / timescale
        else:
            start, length = context.start + position * ticks / timescale, ticks / timescale
        refs.append(Ref(url, start, length, byterange))
    return Track(kind, rep_id, 0, init, refs)
