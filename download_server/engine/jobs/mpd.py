"""Reading a remote MPEG-DASH MPD into plain facts (mpd_model): per period, the best video and audio
representation and their segments (absolute URLs, byte ranges, start times), the init sections, or a sidx
still to be read.

The XML and its values are read by mpd_xml (defusedxml: a DTD with entities is refused before anything is
expanded; every number is checked before it reaches arithmetic); each representation's segments are addressed
by mpd_segments, which charges a shared Budget before any segment is made, so a hostile MPD fails in bounded
memory and time. This module walks the periods and chooses the representations.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.jobs.mpd_model import KINDS, MAX_SEGMENTS, Kind, Manifest, Period, Track
from download_server.engine.jobs.mpd_segments import (
    Budget,
    Clock,
    Context,
    Representation,
    from_base,
    from_list,
    from_template,
)
from download_server.engine.jobs.mpd_xml import base_url, children, merged, number, refuse_protection, root_of, seconds

_MAX_CODECS = 200


def parse(body: bytes, url: str, *, now: datetime | None = None, max_segments: int = MAX_SEGMENTS) -> Manifest:
    """The MPD at `url`; FetchError (bad_content, too_large) for anything unsafe, protected or unplayable."""
    root = root_of(body)
    refuse_protection(root)
    dynamic = root.get("type", "static") == "dynamic"
    base = base_url(root, url)
    total = seconds(root.get("mediaPresentationDuration"), "mediaPresentationDuration")
    update = seconds(root.get("minimumUpdatePeriod"), "minimumUpdatePeriod") or 0.0
    clock = Clock(dynamic, root, now or datetime.now(UTC))
    budget = Budget(max_segments)
    elements = children(root, "Period")
    if not elements:
        raise FetchError(ErrorType.PLAYLIST, "the MPD lists no Period")
    starts = _period_starts(elements, total)
    periods = []
    for position, element in enumerate(elements):
        start, end = starts[position], starts[position + 1] if position + 1 < len(starts) else None
        context = Context(base=base_url(element, base), start=start, end=end, clock=clock, budget=budget)
        tracks = _tracks(element, context)
        if tracks:
            periods.append(Period(start, tracks))
    if not periods:
        raise FetchError(ErrorType.PLAYLIST, "the MPD lists no video or audio representation")
    edge = clock.live_edge()
    starts_in = max(0.0, -edge) if edge is not None else 0.0
    manifest = Manifest(url, dynamic, update if dynamic else 0.0, periods, starts_in)
    if dynamic and not update:
        manifest = dataclasses.replace(manifest, update_period=manifest.segment_duration)
    return manifest


def _period_starts(periods: list[Element], total: float | None) -> list[float]:
    starts: list[float] = []
    for position, element in enumerate(periods):
        start = seconds(element.get("start"), "Period@start")
        if start is None:
            start = 0.0
            if position:
                previous = seconds(periods[position - 1].get("duration"), "Period@duration")
                start = starts[-1] + (previous or 0.0)
        starts.append(start)
    last = seconds(periods[-1].get("duration"), "Period@duration")
    if last is not None:
        starts.append(starts[-1] + last)
    elif total is not None:
        starts.append(total)
    return starts


# Representations
def _kind(adaptation: Element, representation: Element) -> Kind | None:
    for element in (representation, adaptation):
        content = (element.get("contentType") or element.get("mimeType") or "").split("/")[0].strip().lower()
        if content in KINDS:
            return content  # type: ignore[return-value]
    return None


def _tracks(period: Element, context: Context) -> dict[Kind, Track]:
    """The highest-bandwidth video and audio representation of the period (as the HLS master choice)."""
    best: dict[Kind, tuple[int, Element, Element]] = {}
    counts: dict[Kind, int] = {}
    for adaptation in children(period, "AdaptationSet"):
        for representation in children(adaptation, "Representation"):
            kind = _kind(adaptation, representation)
            if kind is None:
                continue
            bandwidth = number(representation, "bandwidth", 0)
            counts[kind] = counts.get(kind, 0) + 1
            if kind not in best or bandwidth > best[kind][0]:
                best[kind] = (bandwidth, adaptation, representation)
    tracks = {}
    for kind, (bandwidth, adaptation, representation) in best.items():
        track = _track(kind, bandwidth, period, adaptation, representation, context)
        codecs = _codecs(representation) or _codecs(adaptation)
        tracks[kind] = dataclasses.replace(track, choices=counts[kind], codecs=codecs)
    return tracks


def _codecs(element: Element) -> str:
    """@codecs ("avc1.64001f", "mp4a.40.2"): an RFC 6381 list, so a longer value is no codec string."""
    value = (element.get("codecs") or "").strip()
    return value if len(value) <= _MAX_CODECS else ""


def _track(
    kind: Kind, bandwidth: int, period: Element, adaptation: Element, representation: Element, context: Context
) -> Track:
    base = base_url(representation, base_url(adaptation, context.base))
    rep = Representation(kind, (representation.get("id") or "").strip(), bandwidth, base)
    levels = (representation, adaptation, period)  # the nearest level's element or attribute wins
    template = merged(levels, "SegmentTemplate")
    if template is not None:
        return from_template(rep, template, context)
    listing = merged(levels, "SegmentList")
    if listing is not None:
        return from_list(rep, listing, context)
    return from_base(rep, merged(levels, "SegmentBase"), context)
