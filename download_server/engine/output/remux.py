"""One MP4 from an HLS recording's segments: stream copy with PyAV, timestamps continuous, moov before mdat."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

# PyAV is imported inside the functions that use it (PLC0415 is not selected): it costs ~16 MiB of RSS,
# which an idle server, or one that only downloads, need not carry; the end of a run imports it once.


# Read-ahead of the chained segment reader: big enough that FFmpeg's small reads rarely cross files.
_BLOCK = 1024 * 1024


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
        moves = {source_stream: _Rescale.of(source_stream.time_base, target.time_base, shift)
                 for source_stream, target in streams.items()}  # fmt: skip
        filters = _adts_filters(source, streams) if out.fragmented else {}
        for packet in source.demux(list(streams)):
            if packet.dts is None and packet.pts is None:
                continue  # a flush packet
            kind = "video" if packet.stream.type == "video" else "audio"
            target, move = streams[packet.stream], moves[packet.stream]
            adts = filters.get(packet.stream)
            for each in adts.filter(packet) if adts is not None else (packet,):
                _write(each, target, kind, move, out)


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


@dataclass(frozen=True)
class _Rescale:
    """One input stream of one run onto its output stream, in integers (Fraction per packet cost more than
    the muxing itself): ticks_out = round(ticks_in * num / den) + offset."""

    num: int
    den: int
    offset: int

    @classmethod
    def of(cls, source: Fraction, target: Fraction, shift: Fraction) -> _Rescale:
        return cls(source.numerator * target.denominator, source.denominator * target.numerator, round(shift / target))

    def __call__(self, ticks: int) -> int:
        return (2 * ticks * self.num + self.den) // (2 * self.den) + self.offset


def _write(packet: Any, target: Any, kind: str, rescale: _Rescale, out: Output) -> None:
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
