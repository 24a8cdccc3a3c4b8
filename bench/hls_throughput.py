"""HLS throughput: the whole server path against curl -Z (the practical limit) and its peers, on one stream.

    python -m bench.hls_throughput [--segments 800] [--segment-kib 256] [--repeat 3] [--origin nginx|aiohttp]
                                   [--no-curl] [--no-aria2] [--no-ytdlp]

The stream's files are written once to the work directory and served by nginx on loopback
(bench/nginx.py; the aiohttp origin of bench/origin.py when nginx cannot be had, with a note in the
table). The download server runs in its own process. Every round measures, back to back and in a
rotating order: mediadl (CreateTask + StartTask over gRPC to COMPLETED), `curl -Z --parallel-max N`,
a bare aiohttp loop, `aria2c -j N` and yt-dlp's native HLS downloader (those three when installed), and
checks every byte each of them wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import baselines
from bench.hls_origin import serve_stream
from bench.report import Row, Spread, cpu_seconds, table
from bench.synthetic import KiB, Pool
from bench.target import DownloadServer

CURL_TARGET = 0.85  # mediadl at >= 0.85 of curl -Z's speed (curl's time / ours)
BARE_TARGET = 1.0  # and never slower than the bare aiohttp loop (its time / ours)

MEDIADL, CURL, BARE, ARIA2, YTDLP = "mediadl", "curl", "bare", "aria2c", "yt-dlp"


@dataclass(frozen=True)
class HlsOptions:
    segments: int = 800
    segment_kib: int = 256
    concurrency: int = 8
    repeat: int = 3
    ytdlp: bool = True
    workdir: Path | None = None  # parent of the temporary work directory (default: the system's)
    curl: bool = True
    aria2: bool = True
    origin: str = "nginx"  # or "aiohttp"


@dataclass(frozen=True)
class Contender:
    """Per-round wall and CPU seconds of one way to download the stream."""

    wall: tuple[float, ...]
    cpu: tuple[float, ...]

    def ratio_to(self, other: Contender, cpu: bool = False) -> Spread:
        """Per-round self/other (how many times longer self took), as a spread."""
        mine, theirs = (self.cpu, other.cpu) if cpu else (self.wall, other.wall)
        return Spread.of([m / t for m, t in zip(mine, theirs, strict=True)])


LABELS = {
    MEDIADL: "mediadl, the whole path (CreateTask + StartTask over gRPC to COMPLETED)",
    CURL: "curl -Z --parallel-max {n} (C, no bookkeeping: the practical limit)",
    BARE: "bare aiohttp loop ({n} workers, no state, no hashing)",
    ARIA2: "aria2c -j {n} over the URL list",
    YTDLP: "yt-dlp native HLS, --concurrent-fragments {n}",
}


@dataclass(frozen=True)
class HlsResult:
    options: HlsOptions
    contenders: dict[str, Contender]  # those that ran, by name
    notes: dict[str, str]  # why a contender did not run, or its version
    origin_note: str = ""
    cpu_note: dict[str, str] = field(default_factory=dict)
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after the rounds

    @property
    def whole(self) -> Contender:
        return self.contenders[MEDIADL]

    def rows(self) -> list[Row]:
        o = self.options
        stream = f"HLS {o.segments} x {o.segment_kib} KiB from {self.origin_note}, concurrency {o.concurrency}"
        mib = o.segments * o.segment_kib / 1024
        whole = Spread.of(self.whole.wall)
        rows = [
            Row(f"{stream}: {LABELS[MEDIADL]}", f"{whole.show(' s')}, {mib / whole.median:.0f} MiB/s"),
            Row(f"HLS load average before / after (of {os.cpu_count()} cores; times stretch with it)",
                f"{self.load[0]:.1f} / {self.load[1]:.1f}"),
        ]  # fmt: skip
        curl = self.contenders.get(CURL)
        for name in (MEDIADL, CURL, BARE, ARIA2, YTDLP):
            label = LABELS[name].format(n=o.concurrency)
            got = self.contenders.get(name)
            if got is None:
                rows.append(Row(f"HLS {label}", f"not run: {self.notes.get(name, 'skipped')}"))
                continue
            if name != MEDIADL:
                rows.append(Row(f"HLS {label}", Spread.of(got.wall).show(" s")))
            cpu = Spread.of(got.cpu).show(" s")
            rows.append(Row(f"HLS CPU seconds: {name} ({self.cpu_note.get(name, 'the process, all threads')})", cpu))
            if curl is not None and name != CURL:
                speed = curl.ratio_to(got)  # curl's time / this one's: the share of the limit reached
                target = f">= {CURL_TARGET}" if name == MEDIADL else ""
                rows.append(
                    Row(
                        f"HLS {name}: share of curl -Z's speed (curl's time / {name}'s)",
                        speed.show(),
                        target,
                        speed.median >= CURL_TARGET if name == MEDIADL else None,
                    )
                )
            if curl is not None and name == MEDIADL:
                work = curl.ratio_to(got, cpu=True).show()
                rows.append(Row("HLS mediadl: curl's CPU seconds / mediadl's (work; steadier than time)", work))
        if MEDIADL in self.contenders and BARE in self.contenders:
            bare = self.contenders[BARE].ratio_to(self.whole)
            met = bare.median >= BARE_TARGET
            rows.append(Row("HLS mediadl against the bare aiohttp loop (its time / ours)", bare.show(), ">= 1.0", met))
            cpu_ratio = self.contenders[BARE].ratio_to(self.whole, cpu=True).show()
            rows.append(Row("HLS CPU ratio bare loop / mediadl (work done; steadier than time)", cpu_ratio))
        return rows


Step = Callable[[], tuple[float, float]]


def measure(options: HlsOptions, say: Callable[[str], None] = print) -> HlsResult:
    size = options.segment_kib * KiB
    expected, whole_digest = _digests(Pool(size), options.segments)
    notes: dict[str, str] = {}
    tools = _find_tools(options, notes, say)
    runs: Runs = {}
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="mediadl-bench-hls-", dir=options.workdir) as tmp:
        work = Path(tmp)
        with (
            serve_stream(options.origin, work / "www", options.segments, size, say) as origin,
            DownloadServer(work / "server", concurrency=options.concurrency) as server,
        ):
            url = origin.url(f"hls/{options.segments}/{size}/index.m3u8")
            with urllib.request.urlopen(url, timeout=30) as resp:
                urls = baselines.segment_urls(resp.read().decode(), url)
            n = options.concurrency

            def files(out: Path) -> list[Path]:
                return [out / f"{i}.ts" for i in range(options.segments)]

            def run_mediadl() -> tuple[float, float]:
                before = cpu_seconds(server.pid)
                outcome = server.download(url, "hls")
                cpu = cpu_seconds(server.pid) - before
                check_files(files(server.storage / "hls" / outcome.task_id / "ts"), expected, "the server")
                server.delete(outcome.task_id)
                return outcome.seconds, cpu

            def run_bare() -> tuple[float, float]:
                out = work / "bare"
                before = os.times()
                seconds = asyncio.run(baselines.bare_aiohttp(url, out, n))
                after = os.times()
                check_files(files(out), expected, "the bare loop")
                shutil.rmtree(out)
                return seconds, (after.user - before.user) + (after.system - before.system)

            def tool_step(name: str, run: Callable[[Path], tuple[float, float]]) -> Step:
                def step() -> tuple[float, float]:
                    out = work / name
                    got = run(out)
                    if name == YTDLP:
                        check_concatenation(out, whole_digest)
                    else:
                        check_files(files(out), expected, name)
                    shutil.rmtree(out)
                    return got

                return step

            steps: dict[str, Step] = {MEDIADL: run_mediadl, BARE: run_bare}
            if CURL in tools:
                steps[CURL] = tool_step(CURL, lambda out: baselines.curl_parallel(tools[CURL][0], urls, out, n))
            if ARIA2 in tools:
                steps[ARIA2] = tool_step(ARIA2, lambda out: baselines.aria2c(tools[ARIA2][0], urls, out, n))
            if YTDLP in tools:
                steps[YTDLP] = tool_step(YTDLP, lambda out: baselines.ytdlp(tools[YTDLP], url, out, n))
            runs = _rounds(steps, options.repeat, say)

    contenders = {name: Contender(tuple(w), tuple(c)) for name, (w, c) in runs.items()}
    cpu_note = {MEDIADL: "the server process, all threads", BARE: "this process, whose loop it is"}
    return HlsResult(options, contenders, notes, origin.note, cpu_note, (load_before, os.getloadavg()[0]))


Runs = dict[str, tuple[list[float], list[float]]]  # contender -> (wall seconds, CPU seconds) per round


def _rounds(steps: dict[str, Step], repeat: int, say: Callable[[str], None]) -> Runs:
    """Warm up every contender once, then `repeat` measured rounds, each in a rotated order so none always
    inherits another's page cache and writeback."""
    names = list(steps)
    say("warm-up: one unmeasured run of each")
    for name in names:
        steps[name]()
    runs: Runs = {name: ([], []) for name in names}
    for round_number in range(repeat):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = steps[name]()
            runs[name][0].append(wall)
            runs[name][1].append(cpu)
        parts = [f"{name} {runs[name][0][-1]:.3f} s ({runs[name][1][-1]:.2f} s CPU)" for name in names]
        line = f"round {round_number + 1}: " + "  ".join(parts)
        if CURL in runs:
            line += f"  mediadl at {runs[CURL][0][-1] / runs[MEDIADL][0][-1]:.2f} of curl"
        say(line)
    return runs


def _find_tools(options: HlsOptions, notes: dict[str, str], say: Callable[[str], None]) -> dict[str, list[str]]:
    """The command of each external contender that will run; `notes` gets each one's version or why not."""
    tools: dict[str, list[str]] = {}
    wanted = (
        (CURL, options.curl, "curl", "curl", "--no-curl"),
        (ARIA2, options.aria2, "aria2c", "aria2", "--no-aria2"),
    )
    for name, chosen, binary, package, flag in wanted:
        if not chosen:
            notes[name] = f"skipped ({flag})"
            continue
        path, notes[name] = baselines.find_tool(binary, package, say)
        if path is not None:
            tools[name] = [path]
    if not options.ytdlp:
        notes[YTDLP] = "skipped (--no-ytdlp)"
    elif (command := baselines.ytdlp_command()) is None:
        notes[YTDLP] = "not installed (pip install yt-dlp)"
    else:
        startup = baselines.ytdlp_startup(command)
        notes[YTDLP] = f"yt-dlp {baselines.ytdlp_version(command)}; its start-up alone takes {startup:.2f} s"
        tools[YTDLP] = command
    for note in notes.values():
        say(note)
    return tools


def _digests(pool: Pool, segments: int) -> tuple[list[str], str]:
    """SHA-256 of each segment (one file each) and of them all in order (yt-dlp writes one file)."""
    expected: list[str] = []
    whole_stream = hashlib.sha256()
    for i in range(segments):
        data = pool.segment(i)
        expected.append(hashlib.sha256(data).hexdigest())
        whole_stream.update(data)
    return expected, whole_stream.hexdigest()


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
    parser.add_argument("--origin", choices=("nginx", "aiohttp"), default=HlsOptions.origin)
    parser.add_argument("--no-curl", action="store_true", help="skip curl -Z (then no ratio to the limit)")
    parser.add_argument("--no-aria2", action="store_true", help="skip aria2c")
    parser.add_argument("--no-ytdlp", action="store_true", help="skip yt-dlp even when it is installed")
    parser.add_argument("--workdir", type=Path, help="where the temporary work directory goes")
    args = parser.parse_args(argv)
    return HlsOptions(
        segments=args.segments,
        segment_kib=args.segment_kib,
        concurrency=args.concurrency,
        repeat=args.repeat,
        ytdlp=not args.no_ytdlp,
        workdir=args.workdir,
        curl=not args.no_curl,
        aria2=not args.no_aria2,
        origin=args.origin,
    )


def main(argv: Sequence[str] | None = None) -> None:
    result = measure(parse_options(argv))
    print()
    print(table(result.rows()))


if __name__ == "__main__":
    main()
