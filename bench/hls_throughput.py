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
class HlsResult:
    options: HlsOptions
    whole: Spread
    bare: Spread
    bare_ratio: Spread
    server_cpu: Spread
    ytdlp: Spread | None
    ytdlp_ratio: Spread | None
    ytdlp_note: str

    def rows(self) -> list[Row]:
        o = self.options
        stream = f"HLS {o.segments} x {o.segment_kib} KiB, concurrency {o.concurrency}"
        mib = o.segments * o.segment_kib / 1024
        rows = [
            Row(f"{stream}: (a) whole path, CreateTask + StartTask to COMPLETED", self.whole.show(" s")),
            Row("HLS (a) throughput", f"{mib / self.whole.median:.0f} MiB/s"),
            Row("HLS (a) server CPU time (all threads)", self.server_cpu.show(" s")),
            Row("HLS (b) bare aiohttp loop", self.bare.show(" s")),
            Row("HLS (b)/(a)", self.bare_ratio.show(), f">= {BARE_TARGET}", self.bare_ratio.median >= BARE_TARGET),
        ]
        if self.ytdlp is not None and self.ytdlp_ratio is not None:
            rows += [
                Row(f"HLS (c) yt-dlp native HLS, --concurrent-fragments {o.concurrency}", self.ytdlp.show(" s")),
                Row(
                    "HLS (c)/(a)",
                    self.ytdlp_ratio.show(),
                    f">= {YTDLP_TARGET:g}",
                    self.ytdlp_ratio.median >= YTDLP_TARGET,
                ),
            ]
        else:
            rows.append(Row("HLS (c) yt-dlp", self.ytdlp_note, f"(c)/(a) >= {YTDLP_TARGET:g}", None))
        return rows


def measure(options: HlsOptions, say: Callable[[str], None] = print) -> HlsResult:
    size = options.segment_kib * KiB
    pool = Pool(size)
    expected = [hashlib.sha256(pool.segment(i)).hexdigest() for i in range(options.segments)]
    whole_stream = hashlib.sha256()
    for i in range(options.segments):
        whole_stream.update(pool.segment(i))
    ytdlp_cmd = baselines.ytdlp_command() if options.ytdlp else None
    ytdlp_note = "not installed (pip install yt-dlp)" if options.ytdlp else "skipped (--no-ytdlp)"
    if ytdlp_cmd is not None:
        startup = baselines.ytdlp_startup(ytdlp_cmd)
        ytdlp_note = f"yt-dlp {baselines.ytdlp_version(ytdlp_cmd)}; its start-up alone takes {startup:.2f} s"
        say(ytdlp_note)

    whole: list[float] = []
    bare: list[float] = []
    cpu: list[float] = []
    ytdlp: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mediadl-bench-hls-", dir=options.workdir) as tmp:
        work = Path(tmp)
        with OriginProcess() as origin, DownloadServer(work / "server", concurrency=options.concurrency) as server:
            url = origin.url(f"hls/{options.segments}/{size}/index.m3u8")

            def run_whole() -> float:
                before = cpu_seconds(server.pid)
                outcome = server.download(url, "hls")
                cpu.append(cpu_seconds(server.pid) - before)
                ts = server.storage / "hls" / outcome.task_id / "ts"
                check_files([ts / f"{i}.ts" for i in range(options.segments)], expected, "the server")
                server.delete(outcome.task_id)
                return outcome.seconds

            def run_bare() -> float:
                out = work / "bare"
                seconds = asyncio.run(baselines.bare_aiohttp(url, out, options.concurrency))
                check_files([out / f"{i}.ts" for i in range(options.segments)], expected, "the bare loop")
                shutil.rmtree(out)
                return seconds

            say("warm-up: one unmeasured run of (a) and (b)")
            run_whole()
            run_bare()
            cpu.clear()
            for round_number in range(1, options.repeat + 1):
                # Alternate who goes first, so neither always inherits the other's page cache and writeback.
                if round_number % 2:
                    whole.append(run_whole())
                    bare.append(run_bare())
                else:
                    bare.append(run_bare())
                    whole.append(run_whole())
                line = f"round {round_number}: (a) {whole[-1]:.3f} s  (b) {bare[-1]:.3f} s"
                line += f"  (b)/(a) {bare[-1] / whole[-1]:.2f}"
                if ytdlp_cmd is not None:
                    out = work / "ytdlp"
                    ytdlp.append(baselines.ytdlp(ytdlp_cmd, url, out, options.concurrency))
                    check_concatenation(out, whole_stream.hexdigest())
                    shutil.rmtree(out)
                    line += f"  (c) {ytdlp[-1]:.3f} s  (c)/(a) {ytdlp[-1] / whole[-1]:.2f}"
                say(line)
    return HlsResult(
        options=options,
        whole=Spread.of(whole),
        bare=Spread.of(bare),
        bare_ratio=Spread.of([b / a for a, b in zip(whole, bare, strict=True)]),
        server_cpu=Spread.of(cpu),
        ytdlp=Spread.of(ytdlp) if ytdlp else None,
        ytdlp_ratio=Spread.of([c / a for a, c in zip(whole, ytdlp, strict=True)]) if ytdlp else None,
        ytdlp_note=ytdlp_note,
    )


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
