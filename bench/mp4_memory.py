"""MP4 memory: the download server's peak RSS while it downloads a 1 GiB MP4, against its idle RSS.

    python -m bench.mp4_memory [--size-mib 1024] [--repeat 1]

The origin generates the file as it streams it (bench/synthetic.py: ftyp, one mdat of pattern bytes,
moov), so neither side holds it whole. The server runs in its own process; its memory is read from
/proc/<pid>/status: VmRSS when idle (after one unary call, so the stack is warm), then the peak over the
download as bench/memory.py measures it (VmHWM reset before, and VmRSS sampled at 50 Hz).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.memory import MP4_DURATION, PEAK_TARGET_MIB, mp4_layout, peak_during, warm_server
from bench.origin import OriginProcess
from bench.report import Row, Spread, rss_mib, table
from bench.synthetic import MiB
from download_server.engine.files.sinks import sha256_of


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


def measure(options: Mp4Options, say: Callable[[str], None] = print) -> Mp4Result:
    size = options.size_mib * MiB
    layout = mp4_layout(size)
    say(f"expected sha256 of the {options.size_mib} MiB file: computing")
    expected = layout.sha256()
    peaks: list[float] = []
    times: list[float] = []
    sources: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="mediadl-bench-mp4-", dir=options.workdir) as tmp:
        with OriginProcess() as origin, warm_server(Path(tmp) / "server") as (server, idle):
            url = origin.url(f"mp4/{size}.mp4")
            say(f"idle server: VmRSS {idle:.1f} MiB (VmHWM since start {rss_mib(server.pid, 'VmHWM'):.1f} MiB)")
            for round_number in range(1, options.repeat + 1):
                outcome, peak = peak_during(server.pid, lambda: server.download(url, "mp4"))
                sources.add(peak.source)
                video = server.video(outcome.task_id)
                problems = wrong_download(video, server.storage, size, expected)  # outside the timed download
                if problems:
                    raise RuntimeError("the downloaded MP4 is wrong: " + "; ".join(problems))
                server.delete(outcome.task_id)
                peaks.append(peak.mib)
                times.append(outcome.seconds)
                say(
                    f"round {round_number}: {outcome.seconds:.2f} s, peak RSS {peak.mib:.1f} MiB"
                    f" (sampled max {peak.sampled_mib:.1f} MiB), {outcome.events} progress events"
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
    if round(video.duration_seconds) != MP4_DURATION:
        problems.append(f"duration {video.duration_seconds}, expected {MP4_DURATION}")
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
