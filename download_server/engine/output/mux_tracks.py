"""One MP4 from separate video and audio tracks (a DASH recording): stream copy with PyAV, the two tracks
read side by side and interleaved by time, each track's runs (periods, gaps) joined end to end."""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from download_server.engine.output.remux import ChainedFile, Output, Run, _Rescale, _write

# PyAV is imported inside the functions that use it (PLC0415 is not selected): it costs ~16 MiB of RSS,
# which an idle server, or one that only downloads, need not carry; the end of a run imports it once.

_Item = tuple[float, int, Any, Any, str, _Rescale]  # (seconds, tie-break, packet, output stream, kind, rescale)


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
                _write(packet, stream, kind, rescale, out)
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
            rescale: _Rescale | None = None
            base = Fraction(0)
            for packet in source.demux(stream):
                stamp = packet.dts if packet.dts is not None else packet.pts
                if stamp is None:
                    continue  # a flush packet
                seconds = Fraction(stamp) * unit
                if rescale is None:
                    shift = end - seconds  # this run's first packet lands where the last one ended
                    rescale = _Rescale.of(unit, target.time_base, shift)
                    base = shift
                moved = seconds + base
                end = max(end, moved + Fraction(packet.duration or 0) * unit)
                yield float(moved), tie, packet, target, kind, rescale
        finally:
            if number:
                source.close()
