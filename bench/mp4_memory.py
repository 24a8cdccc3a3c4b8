"""MP4 memory: the download server's peak RSS while it downloads a 1 GiB MP4, against its idle RSS.

    python -m bench.mp4_memory [--size-mib 1024] [--repeat 1]

The origin generates the file as it streams it (bench/synthetic.py: ftyp, one mdat of pattern bytes,
moov), so neither side holds it whole. The server runs in its own process; its memory is read from
/proc/<pid>/status: VmRSS when idle (after one unary call, so the stack is warm), then for the download
the larger of VmHWM, reset before it through /proc/<pid>/clear_refs (Linux >= 4.0), and VmRSS sampled
at 50 Hz (the kernel updates VmHWM lazily). Where the reset is refused, the samples alone give the peak
(they may miss a spike shorter than 20 ms). psutil is not needed for this: /proc says it all.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.origin import OriginProcess
from bench.report import Row, Spread, reset_peak_rss, rss_mib, table
from bench.synthetic import MiB, Mp4Layout, Pool
from bench.target import DownloadServer
from download_server.engine.files.sinks import sha256_of

PEAK_TARGET_MIB = 150.0
_DURATION = 3600  # seconds, as the synthetic mvhd says


@dataclass(frozen=True)
class Mp4Options:
    size_mib: int = 1024
    repeat: int = 1
    workdir: Path | None = None


@dataclass(frozen=True)
class Mp4Result:
    options: Mp4Options
    idle_mib: float
    peak_mib: Spread
    seconds: Spread
    peak_source: str

    def rows(self) -> list[Row]:
        size = (
            f"{self.options.size_mib} MiB" if self.options.size_mib % 1024 else f"{self.options.size_mib // 1024} GiB"
        )
        peak = self.peak_mib.median
        return [
            Row(f"MP4 {size}: idle server RSS (baseline)", f"{self.idle_mib:.1f} MiB"),
            Row(
                f"MP4 {size}: server peak RSS during the download ({self.peak_source})",
                self.peak_mib.show(" MiB", 1),
                f"< {PEAK_TARGET_MIB:.0f} MiB",
                peak < PEAK_TARGET_MIB,
            ),
            Row(f"MP4 {size}: peak / idle", f"{peak / self.idle_mib:.2f} (+{peak - self.idle_mib:.1f} MiB)"),
            Row(
                f"MP4 {size}: download time (throughput)",
                f"{self.seconds.show(' s')}, {self.options.size_mib / self.seconds.median:.0f} MiB/s",
            ),
        ]


class _Sampler:
    """Reads VmRSS every 20 ms in a thread until stopped; keeps the largest value."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mib(self._pid))
            if self._stop.wait(0.02):
                return


def measure(options: Mp4Options, say: Callable[[str], None] = print) -> Mp4Result:
    size = options.size_mib * MiB
    layout = Mp4Layout(size, Pool(MiB).pattern(), duration=_DURATION)
    say(f"expected sha256 of the {options.size_mib} MiB file: computing")
    expected = layout.sha256()
    peaks: list[float] = []
    times: list[float] = []
    sources: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="mediadl-bench-mp4-", dir=options.workdir) as tmp:
        with OriginProcess() as origin, DownloadServer(Path(tmp) / "server") as server:
            url = origin.url(f"mp4/{size}.mp4")
            server.warm_up()
            idle = rss_mib(server.pid)
            say(f"idle server: VmRSS {idle:.1f} MiB (VmHWM since start {rss_mib(server.pid, 'VmHWM'):.1f} MiB)")
            for round_number in range(1, options.repeat + 1):
                exact = reset_peak_rss(server.pid)
                with _Sampler(server.pid) as sampler:
                    outcome = server.download(url, "mp4")
                # The kernel updates VmHWM lazily (at unmaps), so a sample can exceed it: take the larger.
                peak = max(rss_mib(server.pid, "VmHWM"), sampler.peak) if exact else sampler.peak
                sources.add("VmHWM reset before, and 50 Hz VmRSS samples" if exact else "VmRSS sampled at 50 Hz")
                video = server.video(outcome.task_id)
                problems = wrong_download(video, server.storage, size, expected)  # outside the timed download
                if problems:
                    raise RuntimeError("the downloaded MP4 is wrong: " + "; ".join(problems))
                server.delete(outcome.task_id)
                peaks.append(peak)
                times.append(outcome.seconds)
                say(
                    f"round {round_number}: {outcome.seconds:.2f} s, peak RSS {peak:.1f} MiB"
                    f" (sampled max {sampler.peak:.1f} MiB), {outcome.events} progress events"
                )
    return Mp4Result(options, idle, Spread.of(peaks), Spread.of(times), " / ".join(sorted(sources)))


def wrong_download(video: Any, storage: Path, size: int, expected: str) -> list[str]:
    """What is wrong with the downloaded file (empty: nothing). The bytes on disk are hashed here, not taken
    from the server's own record, which would stay right if the server wrote other bytes than it hashed."""
    problems = []
    path = storage / video.file_path  # relative to the storage root (API.md)
    on_disk = path.stat().st_size if path.is_file() else -1
    if video.file_size != size or on_disk != size:
        problems.append(f"size {video.file_size} recorded, {on_disk} on disk, expected {size}")
    elif sha256_of(path) != expected:
        problems.append("the file on disk differs from the origin's (sha256)")
    if video.sha256 != expected:
        problems.append("the server recorded a sha256 other than the origin's")
    if round(video.duration_seconds) != _DURATION:
        problems.append(f"duration {video.duration_seconds}, expected {_DURATION}")
    return problems


def parse_options(argv: Sequence[str] | None = None) -> Mp4Options:
    parser = argparse.ArgumentParser(prog="python -m bench.mp4_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=Mp4Options.size_mib)
    parser.add_argument("--repeat", type=int, default=Mp4Options.repeat)
    parser.add_argument("--workdir", type=Path, help="where the temporary work directory goes")
    args = parser.parse_args(argv)
    return Mp4Options(args.size_mib, args.repeat, args.workdir)


def main(argv: Sequence[str] | None = None) -> None:
    result = measure(parse_options(argv))
    print()
    print(table(result.rows()))


if __name__ == "__main__":
    main()
