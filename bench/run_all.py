"""`make bench`: every benchmark in bench/, one markdown table on stdout and in docs/benchmarks.md.

    python -m bench.run_all [--repeat 3] [--only hls mp4 ...] [--write docs/benchmarks.md]

Only the block between the two bench:results markers of the document is rewritten; the prose around
it (how to read and reproduce the numbers) is kept. A benchmark that fails shows as a failed row and
makes the exit status 1; the others still run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    dash_vod,
    fanout,
    flv_recording,
    h2load_unary,
    hls_throughput,
    live_window,
    login_storm,
    mp4_memory,
    ranged,
    recording,
    s3,
    unary_stack,
)
from bench.report import Row, machine, table

BEGIN = "<!-- bench:results:begin (written by `make bench`; edit the prose outside this block) -->"
END = "<!-- bench:results:end -->"

Bench = Callable[[argparse.Namespace, Callable[[str], None]], list[Row]]


def _hls(args: argparse.Namespace, say: Callable[[str], None]) -> list[Row]:
    options = hls_throughput.HlsOptions(repeat=args.repeat, workdir=args.workdir)
    return hls_throughput.measure(options, say).rows()


def _mp4(args: argparse.Namespace, say: Callable[[str], None]) -> list[Row]:
    return mp4_memory.measure(mp4_memory.Mp4Options(workdir=args.workdir), say).rows()


def _ranged(args: argparse.Namespace, say: Callable[[str], None]) -> list[Row]:
    return ranged.measure(ranged.RangedOptions(repeat=args.repeat, workdir=args.workdir), say).rows()


# Add new benchmarks here: key for --only -> (title, function returning table rows).
BENCHES: dict[str, tuple[str, Bench]] = {
    "unary": ("Unary cost of the stack (bench/unary_stack.py)", lambda args, say: unary_stack.bench_rows(say)),
    "h2load": (
        "Unary capacity under h2load (bench/h2load_unary.py)",
        lambda args, say: h2load_unary.bench_rows(say),
    ),
    "fanout": ("Progress fan-out (bench/fanout.py)", lambda args, say: fanout.bench_rows(say)),
    "login": ("Login storm (bench/login_storm.py)", lambda args, say: login_storm.bench_rows(say)),
    "hls": ("HLS throughput (bench/hls_throughput.py)", _hls),
    "mp4": ("MP4 memory (bench/mp4_memory.py)", _mp4),
    "dash": (
        "DASH VOD against yt-dlp (bench/dash_vod.py)",
        lambda args, say: dash_vod.measure(dash_vod.DashOptions(repeat=args.repeat, workdir=args.workdir), say),
    ),
    "ranged": ("One big file over several connections, against aria2c (bench/ranged.py)", _ranged),
    "recording": (
        "Recordings: ReadVideo memory, MP4 remux cost (bench/recording.py)",
        lambda args, say: recording.bench_rows(recording.RecordingOptions(workdir=args.workdir), say),
    ),
    "s3": (
        "S3 storage: HLS to a bucket against the local backend, MP4 memory (bench/s3.py)",
        lambda args, say: s3.measure(s3.S3Options(repeat=max(1, args.repeat - 1), workdir=args.workdir), say).rows(),
    ),
    "live": (
        "Live window of 100k entries (bench/live_window.py)",
        lambda args, say: live_window.measure(live_window.LiveOptions(workdir=args.workdir), say).rows(),
    ),
    "flv": (
        "HTTP-FLV recording against a plain file (bench/flv_recording.py)",
        lambda args, say: flv_recording.measure(200, args.repeat, say),
    ),
}


def run(args: argparse.Namespace) -> tuple[str, bool]:
    rows: list[Row] = []
    ok = True
    started = time.monotonic()
    for key in args.only or list(BENCHES):
        name, bench = BENCHES[key]
        print(f"== {name}", flush=True)

        def say(line: str) -> None:
            print(f"   {line}", flush=True)

        try:
            rows += bench(args, say)
        except Exception as exc:
            traceback.print_exc()
            rows.append(Row(name, f"failed: {type(exc).__name__}: {exc}".replace("|", "/"), "", False))
            ok = False
    elapsed = time.monotonic() - started
    workdir = args.workdir or Path(tempfile.gettempdir())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = "\n".join(
        [
            f"Latest run: {stamp}, `{_command(args)}` took {elapsed / 60:.1f} min.",
            "",
            table(rows),
            "",
            "Machine:",
            "",
            *machine(workdir),
        ]
    )
    return block, ok


def _command(args: argparse.Namespace) -> str:
    if args.only is None and args.repeat == 3:
        return "make bench"
    only = f" --only {' '.join(args.only)}" if args.only else ""
    return f"python -m bench.run_all --repeat {args.repeat}{only}"


def write(document: Path, block: str) -> None:
    text = document.read_text() if document.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        head, tail = text.rstrip() + "\n\n", "\n"
    document.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds per throughput measurement (default 3)")
    parser.add_argument("--write", type=Path, help="the markdown document to update (docs/benchmarks.md)")
    parser.add_argument("--workdir", type=Path, help="where the temporary work directories go")
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), help="run these benchmarks only (default: all)")
    args = parser.parse_args(argv)
    block, ok = run(args)
    print()
    print(block)
    if args.write is not None:
        write(args.write, block)
        print(f"\nwrote {args.write}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
