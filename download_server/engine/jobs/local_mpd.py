"""The local manifest.mpd: a static MPD over the segments on disk, one SegmentList per track and period,
naming only local files (never anything from the origin), so a player plays the recording offline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement, tostring

from download_server.domain.models import Segment, SegmentStatus
from download_server.engine.files.layout import DASH_KINDS, dash_kind

_NS = "urn:mpeg:dash:schema:mpd:2011"
_TIMESCALE = 1000  # milliseconds: what every duration below is written in


def duration(done: Sequence[Segment]) -> float:
    """Seconds of media: the video track's (the audio's when there is no video)."""
    for kind in DASH_KINDS:
        seconds = sum(s.duration for s in done if dash_kind(s.index) == kind)
        if seconds:
            return seconds
    return 0.0


Locate = Callable[[Segment], Path | None]


def render(
    segments: Sequence[Segment],
    init_of: Locate,
    file_of: Callable[[Segment], Path],
    codecs_of: Callable[[Segment], str] = lambda _: "",
) -> str:
    """The MPD text. A period starts wherever the source's did (a discontinuity); a segment that is not on
    disk is left out, its time kept as a hole in the SegmentTimeline. `codecs_of` names a track's codecs as
    the source MPD did (dash.js checks them with MediaSource.isTypeSupported); "" leaves @codecs out."""
    periods = _periods(segments)
    total = sum(max((sum(s.duration for s in run) for run in tracks.values()), default=0.0) for tracks in periods)
    root = Element(
        "MPD",
        {
            "xmlns": _NS,
            "type": "static",
            "profiles": "urn:mpeg:dash:profile:isoff-main:2011",
            "minBufferTime": "PT2S",
            "mediaPresentationDuration": _duration(total),
        },
    )
    start = 0.0
    for number, tracks in enumerate(periods):
        length = max((sum(s.duration for s in run) for run in tracks.values()), default=0.0)
        period = SubElement(
            root, "Period", {"id": str(number), "start": _duration(start), "duration": _duration(length)}
        )
        for kind, run in tracks.items():
            _adaptation(period, kind, run, init_of, file_of, codecs_of)
        start += length
    return '<?xml version="1.0" encoding="utf-8"?>\n' + tostring(root, encoding="unicode") + "\n"


def _periods(segments: Sequence[Segment]) -> list[dict[str, list[Segment]]]:
    """Per track, the rows split where the source started a period; the n-th run of each track together."""
    periods: list[dict[str, list[Segment]]] = []
    for kind in DASH_KINDS:
        number = -1
        previous: Segment | None = None
        for segment in sorted((s for s in segments if dash_kind(s.index) == kind), key=lambda s: s.index):
            if previous is None or segment.discontinuity or segment.init_uri != previous.init_uri:
                number += 1
            while len(periods) <= number:
                periods.append({})
            periods[number].setdefault(kind, []).append(segment)
            previous = segment
    return [tracks for tracks in periods if any(s.status is SegmentStatus.DONE for run in tracks.values() for s in run)]


def _adaptation(
    period: Element,
    kind: str,
    run: list[Segment],
    init_of: Locate,
    file_of: Callable[[Segment], Path],
    codecs_of: Callable[[Segment], str],
) -> None:
    done = [s for s in run if s.status is SegmentStatus.DONE]
    if not done:
        return
    seconds = sum(s.duration for s in done) or 1.0
    bandwidth = max(1, round(sum(s.bytes for s in done) * 8 / seconds))
    adaptation = SubElement(
        period, "AdaptationSet", {"contentType": kind, "mimeType": f"{kind}/mp4", "segmentAlignment": "true"}
    )
    attributes = {"id": kind, "bandwidth": str(bandwidth)}
    if codecs := codecs_of(done[0]):
        attributes["codecs"] = codecs
    representation = SubElement(adaptation, "Representation", attributes)
    ticks = [round(s.duration * _TIMESCALE) for s in run]
    listing = SubElement(
        representation,
        "SegmentList",
        {"timescale": str(_TIMESCALE), "duration": str(max(1, round(sum(ticks) / len(ticks))))},
    )
    init = init_of(done[0])
    if init is not None:
        SubElement(listing, "Initialization", {"sourceURL": init.name})
    timeline = SubElement(listing, "SegmentTimeline")
    time, hole = 0, True
    for segment, length in zip(run, ticks, strict=True):
        if segment.status is SegmentStatus.DONE:
            attributes = {"d": str(max(1, length))}
            if hole:
                attributes = {"t": str(time), **attributes}
            SubElement(timeline, "S", attributes)
            hole = False
        else:
            hole = True
        time += length
    for segment in done:
        SubElement(listing, "SegmentURL", {"media": file_of(segment).name})


def _duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"
