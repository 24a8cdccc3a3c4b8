"""`make bench`: every benchmark in bench/, one markdown table on stdout and in docs/benchmarks.md.

    python -m bench.run_all [--repeat 3] [--write docs/benchmarks.md]

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

from bench import hls_throughput, mp4_memory
from bench.report import Row, machine, table

BEGIN = "<!-- bench:results:begin (written by `make bench`; edit the prose outside this block) -->"
END = "<!-- bench:results:end -->"

Bench = Callable[[argparse.Namespace, Callable[[str], None]], list[Row]]


def _hls(args: argparse.Namespace, say: Callable[[str], None]) -> list[Row]:
    options = hls_throughput.HlsOptions(repeat=args.repeat, workdir=args.workdir)
    return hls_throughput.measure(options, say).rows()


def _mp4(args: argparse.Namespace, say: Callable[[str], None]) -> list[Row]:
    return mp4_memory.measure(mp4_memory.Mp4Options(workdir=args.workdir), say).rows()


# Add new benchmarks here: (name, function returning table rows).
BENCHES: list[tuple[str, Bench]] = [
    ("HLS throughput (bench/hls_throughput.py)", _hls),
    ("MP4 memory (bench/mp4_memory.py)", _mp4),
]


def run(args: argparse.Namespace) -> tuple[str, bool]:
    rows: list[Row] = []
    ok = True
    started = time.monotonic()
    for name, bench in BENCHES:
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
            f"Latest run: {stamp}, `make bench` (repeat {args.repeat}) took {elapsed / 60:.1f} min.",
            "",
            table(rows),
            "",
            "Machine:",
            "",
            *machine(workdir),
        ]
    )
    return block, ok


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
