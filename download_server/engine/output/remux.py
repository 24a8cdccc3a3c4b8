"""One MP4 from an HLS recording's segments: stream copy with PyAV, timestamps continuous, moov before mdat."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

# PyAV is imported inside the functions that use it (PLC0415 is not selected): it costs ~16 MiB of RSS,
# which an idle server, or one that only downloads, need not carry; the end of a run imports it once.


# Read-ahead of the chained segment reader: big enough that FFmpeg's small reads rarely cross files.
_BLOCK = 1024 * 1024
_NEVER = -(1 << 62)  # an end before any decode time


@dataclass(frozen=True)
class Run:
    """Segments that play as one continuous stream (no discontinuity, one init section between them)."""

    files: list[Path]
    init: Path | None = None


@dataclass
class Output:
    container: Any  # av OutputContainer
    streams: dict[str, Any] = field(default_factory=dict)  # "video"/"audio" -> output stream
    end_ticks: dict[str, tuple[int, Any]] = field(default_factory=dict)  # per kind: decode end, time base

    @property
    def ends(self) -> dict[str, Fraction]:
        """Where each kind's decode times end so far, in seconds."""
        return {kind: Fraction(ticks) * unit for kind, (ticks, unit) in self.end_ticks.items()}

    packets: int = 0
    last_dts: dict[int, int] = field(default_factory=dict)  # per output stream, in its time base
    started: bool = False
    # A fragmented MP4 (engine/output/live_mux.py): FFmpeg does not put its own aac_adtstoasc filter in
    # front of that muxer, so ADTS audio (MPEG-TS segments) goes through one here.
    fragmented: bool = False


class ChainedFile(io.RawIOBase):
    """The init section and the segments of a run read as one file (MPEG-TS and fMP4 fragments concatenate)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths = list(paths)
        self._handle: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while True:
            handle = self._handle
            if handle is None:
                if not self._paths:
                    return 0
                handle = self._handle = self._paths.pop(0).open("rb", buffering=_BLOCK)
            count = handle.readinto(view)  # type: ignore[attr-defined]
            if count:
                return int(count)
            handle.close()
            self._handle = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        super().close()


def build_mp4(runs: Sequence[Run], target: Path) -> int:
    """Blocking: write `target` (atomically) from `runs`; returns how many packets it holds. Stream copy
    only: each run's timestamps are shifted to start where the previous run ended, so a discontinuity
    (an encoder restart, a live gap) plays on instead of jumping back or stalling."""
    import av

    temp = target.with_name(target.name + ".part")
    temp.parent.mkdir(parents=True, exist_ok=True)
    # +faststart: the muxer moves moov ahead of mdat when it closes, so the file plays while it downloads.
    with av.open(str(temp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        out = Output(container)
        for run in runs:
            _copy_run(run, out)
    if out.packets == 0:
        temp.unlink(missing_ok=True)
        raise ValueError("no audio or video packets to write")
    os.replace(temp, target)
    return out.packets


def _copy_run(run: Run, out: Output) -> None:
    parts = [run.init, *run.files] if run.init else list(run.files)
    firsts = first_dts(parts)
    if firsts:
        copy_source(ChainedFile(parts), firsts, out)


def copy_source(chained: io.RawIOBase, firsts: dict[str, Fraction], out: Output) -> None:
    """Copy every packet of one run read from `chained` into `out`, moved by the run's shift (see _shift);
    `firsts` are the run's first decode times (first_dts)."""
    import av

    with av.open(chained, "r") as source:
        streams = _mapped(source, out)
        if not out.started:
            out.container.start_encoding()  # the header fixes each output stream's time base
            out.started = True
        shift = _shift(firsts, out)
        filters = _adts_filters(source, streams) if out.fragmented else {}
        lanes = {stream.index: _Lane.of(stream, target, shift, filters.get(stream), out)
                 for stream, target in streams.items()}  # fmt: skip
        try:
            out.packets += _copy_packets(source.demux(list(streams)), lanes, out.container.mux_one)
        finally:
            for lane in lanes.values():
                lane.close(out)


def _copy_packets(packets: Iterator[Any], lanes: dict[int, _Lane], mux: Callable[[Any], None]) -> int:
    """The per-packet loop, kept to what each packet needs (it runs ~70 times per second of video and audio):
    the shift is added in the input's ticks and FFmpeg's muxer rescales pts, dts and duration (in C); a decode
    time is checked in output ticks only where it could round onto the previous one (see _Lane)."""
    count = 0
    for packet in packets:
        lane = lanes[packet.stream_index]
        dts, pts = packet.dts, packet.pts
        if dts is None:
            if pts is None:
                continue  # a flush packet
            dts = pts
        elif pts is None:
            pts = dts
        dts += lane.offset
        pts += lane.offset
        floor = lane.floor
        if floor is None or dts - floor < lane.step:
            lane.guarded(packet, dts, pts)
        else:
            packet.dts, packet.pts = dts, pts if pts > dts else dts
            lane.floor = dts
            end = dts + (packet.duration or 0)
            if end > lane.end:
                lane.end = end
        packet.stream = lane.target
        if lane.adts is None:
            mux(packet)
            count += 1
        else:
            for each in lane.adts.filter(packet):
                mux(each)
                count += 1
    return count


def _adts_filters(source: Any, streams: dict[Any, Any]) -> dict[Any, Any]:
    """AAC in ADTS frames (MPEG-TS) -> raw AAC, its AudioSpecificConfig passed to the muxer as new extradata."""
    from av.bitstream import BitStreamFilterContext

    if "mpegts" not in source.format.name:
        return {}
    return {stream: BitStreamFilterContext("aac_adtstoasc", stream)
            for stream in streams if stream.type == "audio" and stream.codec_context.name == "aac"}  # fmt: skip


def _shift(firsts: dict[str, Fraction], out: Output) -> Fraction:
    """How far to move a run: its video decode times continue where the previous run's ended (audio when
    there is no video), so joins add no gap of the B-frame delay; the first run starts at 0."""
    for kind in ("video", "audio"):
        if kind in firsts and kind in out.ends:
            return out.ends[kind] - firsts[kind]
    return -min(firsts.values())


def first_dts(parts: list[Path]) -> dict[str, Fraction]:
    """The run's first decoding time per kind in seconds, from its first packets (a short first pass)."""
    import av

    firsts: dict[str, Fraction] = {}
    with av.open(ChainedFile(parts), "r") as source:
        wanted = [*source.streams.video[:1], *source.streams.audio[:1]]
        for count, packet in enumerate(source.demux(wanted)):
            stamp = packet.dts if packet.dts is not None else packet.pts
            kind = "video" if packet.stream.type == "video" else "audio"
            if stamp is not None and kind not in firsts:
                firsts[kind] = Fraction(stamp) * packet.time_base
            if len(firsts) == len(wanted) or count > 1000:
                break
    return firsts


def _mapped(source: Any, out: Output) -> dict[Any, Any]:
    """Input stream -> output stream: the first video and the first audio stream of every run."""
    mapping: dict[Any, Any] = {}
    for kind, candidates in (("video", source.streams.video), ("audio", source.streams.audio)):
        if not candidates:
            continue
        stream = candidates[0]
        if kind not in out.streams:
            if out.packets:
                continue  # a kind that appears only later cannot join an MP4 already being written
            out.streams[kind] = out.container.add_stream_from_template(stream)
        mapping[stream] = out.streams[kind]
    return mapping


class _Lane:
    """One input stream of one run onto its output stream. Timestamps move by the run's shift counted in the
    input's ticks (`offset`); the muxer rescales them to the output's time base, rounding as `ticks` does.
    The muxer needs decode times strictly rising per output stream: a step of at least `step` input ticks
    (one output tick) always is, so only shorter steps and a run's first packet (after the previous run's
    last, which may overlap it by a tick) are checked in output ticks, and moved past the last one."""

    __slots__ = ("adts", "den", "end", "end_out", "floor", "floor_out", "kind", "num", "offset", "step", "target")

    def __init__(self, target: Any, kind: str, ratio: tuple[int, int], offset: int, adts: Any, floor_out: int | None):
        self.target, self.kind, self.adts, self.offset = target, kind, adts, offset
        self.num, self.den = ratio  # input ticks -> output ticks: ticks * num / den
        self.step = -(-self.den // self.num)  # input ticks per output tick, rounded up
        self.floor: int | None = None  # the last decode time written, in input ticks (moved)
        self.floor_out = floor_out  # ... in output ticks, while `floor` is None: a run's start or a moved packet
        self.end = _NEVER  # the latest decode end written, in input ticks
        self.end_out: int | None = None  # ... of a packet written in output ticks

    @classmethod
    def of(cls, source: Any, target: Any, shift: Fraction, adts: Any, out: Output) -> _Lane:
        unit, goal = Fraction(source.time_base), Fraction(target.time_base)
        ratio = (unit.numerator * goal.denominator, unit.denominator * goal.numerator)
        kind = "video" if source.type == "video" else "audio"
        return cls(target, kind, ratio, round(shift / unit), adts, out.last_dts.get(target.index))

    def ticks(self, value: int) -> int:
        """Input ticks in output ticks, rounded to nearest, halves away from zero, as av_rescale_q does."""
        if value < 0:
            return -self.ticks(-value)
        return (value * self.num + self.den // 2) // self.den

    def guarded(self, packet: Any, dts: int, pts: int) -> None:
        """A packet whose decode time may land on or before the last one written, once in output ticks."""
        floor = self.floor_out if self.floor is None else self.ticks(self.floor)
        moved_dts = self.ticks(dts)
        duration = packet.duration or 0
        if floor is None or moved_dts > floor:
            packet.dts, packet.pts = dts, max(pts, dts)
            self.floor = dts
            self.end = max(self.end, dts + duration)
            return
        # Written in output ticks, moved one past the last decode time (presentation by as much).
        moved_pts = self.ticks(pts) + floor + 1 - moved_dts
        packet.time_base = self.target.time_base
        packet.dts, packet.pts, packet.duration = floor + 1, max(moved_pts, floor + 1), self.ticks(duration)
        self.floor, self.floor_out = None, floor + 1
        self.end_out = max(self.end_out or 0, floor + 1 + packet.duration)

    def close(self, out: Output) -> None:
        """The run's last decode time and decode end in output ticks, for the next run of this output stream."""
        last = self.floor_out if self.floor is None else self.ticks(self.floor)
        if last is not None:
            out.last_dts[self.target.index] = last
        ends = [self.ticks(self.end)] if self.end > _NEVER else []
        ends += [self.end_out] if self.end_out is not None else []
        previous = out.end_ticks.get(self.kind)
        if ends and (previous is None or max(ends) > previous[0]):
            out.end_ticks[self.kind] = (max(ends), self.target.time_base)


def runs_of(entries: Sequence[tuple[Path, Path | None, bool]]) -> Iterator[Run]:
    """Group (file, init, starts a discontinuity) in play order into runs."""
    files: list[Path] = []
    init: Path | None = None
    for path, entry_init, breaks in entries:
        if files and (breaks or entry_init != init):
            yield Run(files, init)
            files = []
        init = entry_init
        files.append(path)
    if files:
        yield Run(files, init)
