"""HLS throughput: the whole server path against a bare aiohttp loop and yt-dlp, on one synthetic stream.

    python -m bench.hls_throughput [--segments 800] [--segment-kib 256] [--repeat 3] [--no-ytdlp]

The origin (bench/origin.py) and the download server each run in their own process on loopback. Every
round measures (a) CreateTask + StartTask streamed until COMPLETED, (b) a bare aiohttp loop with the
same concurrency writing the same segments to disk, (c) yt-dlp's native HLS downloader with
--concurrent-fragments (when installed), and checks every byte each of them wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import baselines
from bench.origin import OriginProcess
from bench.report import Row, Spread, cpu_seconds, table
from bench.synthetic import KiB, Pool
from bench.target import DownloadServer

BARE_TARGET = 0.67  # (b)/(a): we lose at most a third to bookkeeping
YTDLP_TARGET = 5.0  # (c)/(a): five times faster than yt-dlp on the same stream


@dataclass(frozen=True)
class HlsOptions:
    segments: int = 800
    segment_kib: int = 256
    concurrency: int = 8
    repeat: int = 3
    ytdlp: bool = True
    workdir: Path | None = None  # parent of the temporary work directory (default: the system's)


@dataclass(frozen=True)
class Contender:
    """Per-round wall and CPU seconds of one way to download the stream."""

    wall: tuple[float, ...]
    cpu: tuple[float, ...]

    def ratio_to(self, other: Contender, cpu: bool = False) -> Spread:
        """Per-round self/other (how many times longer self took), as a spread."""
        mine, theirs = (self.cpu, other.cpu) if cpu else (self.wall, other.wall)
        return Spread.of([m / t for m, t in zip(mine, theirs, strict=True)])


@dataclass(frozen=True)
class HlsResult:
    options: HlsOptions
    whole: Contender  # (a)
    bare: Contender  # (b)
    ytdlp: Contender | None  # (c)
    ytdlp_note: str

    def rows(self) -> list[Row]:
        o = self.options
        stream = f"HLS {o.segments} x {o.segment_kib} KiB, concurrency {o.concurrency}"
        mib = o.segments * o.segment_kib / 1024
        whole, bare = Spread.of(self.whole.wall), Spread.of(self.bare.wall)
        bare_ratio = self.bare.ratio_to(self.whole)
        rows = [
            Row(f"{stream}: (a) whole path, CreateTask + StartTask to COMPLETED", whole.show(" s")),
            Row("HLS (a) throughput", f"{mib / whole.median:.0f} MiB/s"),
            Row("HLS (b) bare aiohttp loop", bare.show(" s")),
            Row("HLS (b)/(a)", bare_ratio.show(), f">= {BARE_TARGET}", bare_ratio.median >= BARE_TARGET),
            Row("HLS CPU seconds: (a) server process, all threads", Spread.of(self.whole.cpu).show(" s")),
            Row("HLS CPU seconds: (b) bare loop", Spread.of(self.bare.cpu).show(" s")),
            Row("HLS CPU ratio (b)/(a) (work done; steadier than time on a busy machine)",
                self.bare.ratio_to(self.whole, cpu=True).show()),
        ]  # fmt: skip
        if self.ytdlp is None:
            return [*rows, Row("HLS (c) yt-dlp", self.ytdlp_note, f"(c)/(a) >= {YTDLP_TARGET:g}", None)]
        ytdlp_ratio = self.ytdlp.ratio_to(self.whole)
        ytdlp_what = f"HLS (c) yt-dlp native HLS, --concurrent-fragments {o.concurrency}"
        return [
            *rows,
            Row(ytdlp_what, Spread.of(self.ytdlp.wall).show(" s")),
            Row("HLS (c)/(a)", ytdlp_ratio.show(), f">= {YTDLP_TARGET:g}", ytdlp_ratio.median >= YTDLP_TARGET),
            Row("HLS CPU seconds: (c) yt-dlp", Spread.of(self.ytdlp.cpu).show(" s")),
            Row("HLS CPU ratio (c)/(a)", self.ytdlp.ratio_to(self.whole, cpu=True).show()),
        ]  # fmt: skip


def measure(options: HlsOptions, say: Callable[[str], None] = print) -> HlsResult:
    size = options.segment_kib * KiB
    expected, whole_digest = _digests(Pool(size), options.segments)
    ytdlp_cmd, ytdlp_note = _find_ytdlp(options, say)

    runs: dict[str, tuple[list[float], list[float]]] = {"a": ([], []), "b": ([], []), "c": ([], [])}

    def record(key: str, wall: float, cpu: float) -> None:
        runs[key][0].append(wall)
        runs[key][1].append(cpu)

    with tempfile.TemporaryDirectory(prefix="mediadl-bench-hls-", dir=options.workdir) as tmp:
        work = Path(tmp)
        with OriginProcess() as origin, DownloadServer(work / "server", concurrency=options.concurrency) as server:
            url = origin.url(f"hls/{options.segments}/{size}/index.m3u8")

            def run_whole() -> None:
                before = cpu_seconds(server.pid)
                outcome = server.download(url, "hls")
                record("a", outcome.seconds, cpu_seconds(server.pid) - before)
                ts = server.storage / "hls" / outcome.task_id / "ts"
                check_files([ts / f"{i}.ts" for i in range(options.segments)], expected, "the server")
                server.delete(outcome.task_id)

            def run_bare() -> None:
                out = work / "bare"
                before = os.times()
                seconds = asyncio.run(baselines.bare_aiohttp(url, out, options.concurrency))
                after = os.times()
                record("b", seconds, (after.user - before.user) + (after.system - before.system))
                check_files([out / f"{i}.ts" for i in range(options.segments)], expected, "the bare loop")
                shutil.rmtree(out)

            say("warm-up: one unmeasured run of (a) and (b)")
            run_whole()
            run_bare()
            for key in runs:
                runs[key][0].clear()
                runs[key][1].clear()
            for round_number in range(1, options.repeat + 1):
                # Alternate who goes first, so neither always inherits the other's page cache and writeback.
                for step in (run_whole, run_bare) if round_number % 2 else (run_bare, run_whole):
                    step()
                (a, a_cpu), (b, b_cpu) = ((w[-1], c[-1]) for w, c in (runs["a"], runs["b"]))
                line = f"round {round_number}: (a) {a:.3f} s ({a_cpu:.2f} s CPU)  (b) {b:.3f} s ({b_cpu:.2f} s CPU)"
                line += f"  (b)/(a) {b / a:.2f}"
                if ytdlp_cmd is not None:
                    out = work / "ytdlp"
                    record("c", *baselines.ytdlp(ytdlp_cmd, url, out, options.concurrency))
                    check_concatenation(out, whole_digest)
                    shutil.rmtree(out)
                    line += f"  (c) {runs['c'][0][-1]:.3f} s ({runs['c'][1][-1]:.2f} s CPU)"
                    line += f"  (c)/(a) {runs['c'][0][-1] / a:.2f}"
                say(line)

    def contender(key: str) -> Contender:
        return Contender(tuple(runs[key][0]), tuple(runs[key][1]))

    return HlsResult(options, contender("a"), contender("b"), contender("c") if runs["c"][0] else None, ytdlp_note)


def _digests(pool: Pool, segments: int) -> tuple[list[str], str]:
    """SHA-256 of each segment (for (a) and (b), one file each) and of them all in order (for (c), one file)."""
    expected: list[str] = []
    whole_stream = hashlib.sha256()
    for i in range(segments):
        data = pool.segment(i)
        expected.append(hashlib.sha256(data).hexdigest())
        whole_stream.update(data)
    return expected, whole_stream.hexdigest()


def _find_ytdlp(options: HlsOptions, say: Callable[[str], None]) -> tuple[list[str] | None, str]:
    """yt-dlp's command line (None: (c) is not run) and the note the report shows about it."""
    if not options.ytdlp:
        return None, "skipped (--no-ytdlp)"
    command = baselines.ytdlp_command()
    if command is None:
        return None, "not installed (pip install yt-dlp)"
    startup = baselines.ytdlp_startup(command)
    note = f"yt-dlp {baselines.ytdlp_version(command)}; its start-up alone takes {startup:.2f} s"
    say(note)
    return command, note


def check_files(paths: Sequence[Path], expected: Sequence[str], who: str) -> None:
    for index, (path, digest) in enumerate(zip(paths, expected, strict=True)):
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise RuntimeError(f"{who} wrote a wrong or no segment {index} ({path})")


def check_concatenation(out: Path, digest: str) -> None:
    files = [p for p in out.iterdir() if p.is_file()]
    if len(files) != 1:
        raise RuntimeError(f"yt-dlp left {len(files)} files in {out}, expected one")
    got = hashlib.sha256()
    with files[0].open("rb") as handle:
        while block := handle.read(1 << 20):
            got.update(block)
    if got.hexdigest() != digest:
        raise RuntimeError("yt-dlp's output is not the stream's segments in order")


def parse_options(argv: Sequence[str] | None = None) -> HlsOptions:
    parser = argparse.ArgumentParser(prog="python -m bench.hls_throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=HlsOptions.segments)
    parser.add_argument("--segment-kib", type=int, default=HlsOptions.segment_kib)
    parser.add_argument("--concurrency", type=int, default=HlsOptions.concurrency)
    parser.add_argument("--repeat", type=int, default=HlsOptions.repeat)
    parser.add_argument("--no-ytdlp", action="store_true", help="skip (c) even when yt-dlp is installed")
    parser.add_argument("--workdir", type=Path, help="where the temporary work directory goes")
    args = parser.parse_args(argv)
    return HlsOptions(args.segments, args.segment_kib, args.concurrency, args.repeat, not args.no_ytdlp, args.workdir)


def main(argv: Sequence[str] | None = None) -> None:
    result = measure(parse_options(argv))
    print()
    print(table(result.rows()))


if __name__ == "__main__":
    main()
