"""One MP4 from separate video and audio tracks (a DASH recording): stream copy with PyAV, the two tracks
read side by side and interleaved by time, each track's runs (periods, gaps) joined end to end."""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from download_server.engine.output.remux import ChainedFile, Output, Run

# PyAV is imported inside the functions that use it (PLC0415 is not selected): it costs ~16 MiB of RSS,
# which an idle server, or one that only downloads, need not carry; the end of a run imports it once.

_Item = tuple[float, int, Any, Any, str, "Rescale"]  # (seconds, tie-break, packet, output stream, kind, rescale)


def build_tracks_mp4(tracks: Mapping[str, Sequence[Run]], target: Path) -> int:
    """Blocking: write `target` (atomically, moov before mdat) from each kind's runs in play order; returns
    how many packets it holds. Packets are muxed in time order across the tracks, so memory holds a few
    packets per track, never a track's worth."""
    import av

    temp = target.with_name(target.name + ".part")
    temp.parent.mkdir(parents=True, exist_ok=True)
    opened: list[Any] = []
    try:
        with av.open(str(temp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            out = Output(container)
            firsts = {}
            for kind, runs in tracks.items():
                if runs:
                    first = av.open(ChainedFile(_parts(runs[0])), "r")
                    opened.append(first)
                    streams = first.streams.video if kind == "video" else first.streams.audio
                    if streams:
                        out.streams[kind] = container.add_stream_from_template(streams[0])
                        firsts[kind] = first
            if not out.streams:
                raise ValueError("no audio or video stream to write")
            container.start_encoding()
            out.started = True
            feeds = [_feed(kind, tracks[kind], firsts[kind], out, number) for number, kind in enumerate(firsts)]
            for _seconds, _tie, packet, stream, kind, rescale in heapq.merge(*feeds, key=lambda item: item[0]):
                write(packet, stream, kind, rescale, out)
    finally:
        for source in opened:
            source.close()
    if out.packets == 0:
        temp.unlink(missing_ok=True)
        raise ValueError("no audio or video packets to write")
    os.replace(temp, target)
    return out.packets


def _parts(run: Run) -> list[Path]:
    return [run.init, *run.files] if run.init else list(run.files)


def _feed(kind: str, runs: Sequence[Run], first: Any, out: Output, tie: int) -> Iterator[_Item]:
    """One track's packets in decode order, each run moved to start where the track's previous run ended."""
    import av

    end = Fraction(0)
    for number, run in enumerate(runs):
        source = first if number == 0 else av.open(ChainedFile(_parts(run)), "r")
        try:
            candidates = source.streams.video if kind == "video" else source.streams.audio
            if not candidates:
                continue
            stream, target = candidates[0], out.streams[kind]
            unit = Fraction(stream.time_base or 1)
            rescale: Rescale | None = None
            base = Fraction(0)
            for packet in source.demux(stream):
                stamp = packet.dts if packet.dts is not None else packet.pts
                if stamp is None:
                    continue  # a flush packet
                seconds = Fraction(stamp) * unit
                if rescale is None:
                    shift = end - seconds  # this run's first packet lands where the last one ended
                    rescale = Rescale.of(unit, target.time_base, shift)
                    base = shift
                moved = seconds + base
                end = max(end, moved + Fraction(packet.duration or 0) * unit)
                yield float(moved), tie, packet, target, kind, rescale
        finally:
            if number:
                source.close()


@dataclass(frozen=True)
class Rescale:
    """One input stream of one run onto its output stream, in integers (Fraction per packet cost more than
    the muxing itself): ticks_out = round(ticks_in * num / den) + offset."""

    num: int
    den: int
    offset: int

    @classmethod
    def of(cls, source: Fraction, target: Fraction, shift: Fraction) -> Rescale:
        return cls(source.numerator * target.denominator, source.denominator * target.numerator, round(shift / target))

    def __call__(self, ticks: int) -> int:
        return (2 * ticks * self.num + self.den) // (2 * self.den) + self.offset


def write(packet: Any, target: Any, kind: str, rescale: Rescale, out: Output) -> None:
    """Mux one packet moved by `rescale` into the output stream's own time base (runs may differ)."""
    dts = packet.dts if packet.dts is not None else packet.pts
    pts = packet.pts if packet.pts is not None else dts
    duration = packet.duration or 0
    new_dts, new_pts = rescale(dts), rescale(pts)
    # B-frames decode before the run's first presentation time, and a join may overlap the previous run's
    # last decode times by a tick: the muxer needs decode times strictly rising per stream.
    floor = out.last_dts.get(target.index)
    if floor is not None and new_dts <= floor:
        new_pts += floor + 1 - new_dts
        new_dts = floor + 1
    out.last_dts[target.index] = new_dts
    packet.time_base = target.time_base
    packet.dts, packet.pts = new_dts, max(new_pts, new_dts)
    packet.duration = rescale(duration) - rescale.offset
    packet.stream = target
    end = new_dts + packet.duration
    if end > out.end_ticks.get(kind, (end - 1, None))[0]:
        out.end_ticks[kind] = (end, target.time_base)
    out.container.mux(packet)
    out.packets += 1
