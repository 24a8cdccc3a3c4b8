"""One big file over several connections: mediadl (DOWNLOAD_RANGE_CONNECTIONS) against aria2c, from nginx.

    python -m bench.ranged [--size-mib 1024] [--repeat 1] [--connections 4 8] [--limits none 20m]

A synthetic MP4 (bench/synthetic.py) is written once into a folder that a throwaway nginx serves
(bench/nginx.py: sendfile, keep-alive; with `limit_rate 20m` per connection, a CDN-like cap, and without).
For each connection count N, ours is the whole path: a download server process with
DOWNLOAD_RANGE_CONNECTIONS=N, CreateTask + StartTask over gRPC until COMPLETED, every byte written, hashed and
recorded. The baseline is `aria2c -xN -sN` (C++, no hash, no database) on the same URL in the same run.
Printed: both times, ours / aria2c (target <= 1.10), the server's peak RSS (< 150 MiB) and CPU seconds of
each side. Every file is checked (size and sha256 against the origin's) outside the timed part.

Without nginx (not installed, not root) the aiohttp bench origin serves the file instead, without limits
(it cannot cap a connection), and a row says so; without aria2c (not installed, not root) the aria2c rows
say it was skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from bench.memory import PEAK_TARGET_MIB, mp4_layout, peak_during, warm_server
from bench.mp4_memory import wrong_download
from bench.nginx import NginxOptions, NginxOrigin, NginxUnavailable
from bench.origin import OriginProcess
from bench.report import Row, Spread, table
from bench.synthetic import MiB
from bench.target import DownloadServer
from download_server.engine.files.sinks import sha256_of

RATIO_TARGET = 1.10  # ours within 10% of aria2c's time


@dataclass(frozen=True)
class RangedOptions:
    size_mib: int = 1024
    repeat: int = 1
    connections: tuple[int, ...] = (4, 8)
    limits: tuple[str | None, ...] = (None, "20m")  # nginx limit_rate per connection; None: no cap
    workdir: Path | None = None


@dataclass
class Case:
    connections: int
    limit: str | None
    ours: list[float] = field(default_factory=list)
    ours_cpu: list[float] = field(default_factory=list)
    peak_mib: list[float] = field(default_factory=list)
    aria: list[float] = field(default_factory=list)
    aria_cpu: list[float] = field(default_factory=list)

    def label(self, size_mib: int) -> str:
        size = f"{size_mib // 1024} GiB" if size_mib % 1024 == 0 else f"{size_mib} MiB"
        cap = f"limit_rate {self.limit}/connection" if self.limit else "no rate limit"
        return f"ranged {size}, {self.connections} connections, {cap}"


@dataclass
class RangedResult:
    options: RangedOptions
    cases: list[Case]
    notes: list[str]

    def rows(self) -> list[Row]:
        rows = [Row(f"ranged: {note}", "see note") for note in self.notes]
        size = self.options.size_mib
        for case in self.cases:
            label = case.label(size)
            ours = Spread.of(case.ours)
            rows.append(
                Row(
                    f"{label}: ours (gRPC to COMPLETED, hashed), CPU s",
                    f"{ours.show(' s')}, {size / ours.median:.0f} MiB/s, CPU {Spread.of(case.ours_cpu).show(' s')}",
                )
            )
            peak = Spread.of(case.peak_mib)
            rows.append(
                Row(
                    f"{label}: server peak RSS",
                    peak.show(" MiB", 1),
                    f"< {PEAK_TARGET_MIB:.0f} MiB",
                    peak.median < PEAK_TARGET_MIB,
                )
            )
            if not case.aria:
                continue
            aria = Spread.of(case.aria)
            rows.append(
                Row(
                    f"{label}: aria2c -x{case.connections} -s{case.connections} (no hash), CPU s",
                    f"{aria.show(' s')}, {size / aria.median:.0f} MiB/s, CPU {Spread.of(case.aria_cpu).show(' s')}",
                )
            )
            ratio = Spread.of([o / a for o, a in zip(case.ours, case.aria, strict=True)])
            rows.append(
                Row(
                    f"{label}: ours / aria2c time", ratio.show(), f"<= {RATIO_TARGET:.2f}", ratio.median <= RATIO_TARGET
                )
            )
        return rows


def aria2c_binary(install: bool = True) -> str | None:
    """aria2c's path; installs the Debian package when missing and root with apt-get; None otherwise."""
    found = shutil.which("aria2c")
    if found or not install or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["update", "-q"], ["install", "-y", "-q", "--no-install-recommends", "aria2"]):
        subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", *args], env=env, capture_output=True, timeout=900)
    return shutil.which("aria2c")


def aria2c(binary: str, url: str, out: Path, connections: int) -> tuple[float, float]:
    """(wall, CPU) seconds of `aria2c -xN -sN` fetching `url` into `out`, start to exit."""
    out.unlink(missing_ok=True)
    args = [
        binary,
        f"-x{connections}",
        f"-s{connections}",
        "--file-allocation=falloc",  # as ours: the whole size reserved at once, no zeros written
        "--allow-overwrite=true",
        "--auto-file-renaming=false",
        "--console-log-level=warn",
        "--summary-interval=0",
        "--download-result=hide",
        "--quiet=true",
        "-d",
        str(out.parent),
        "-o",
        out.name,
        url,
    ]
    before = _children_cpu()
    started = time.perf_counter()
    subprocess.run(args, check=True, timeout=3600)
    return time.perf_counter() - started, _children_cpu() - before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for child (aria2c, nginx's not yet)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def _origin(root: Path, name: str, size: int, limit: str | None, notes: list[str]) -> Iterator[str | None]:
    """The file's URL from nginx (with the limit), or from the aiohttp origin (no limit: None when one is asked)."""
    try:
        with NginxOrigin(NginxOptions(root, limit_rate=limit, access_log=False)) as nginx:
            yield nginx.url(name)
            return
    except NginxUnavailable as exc:
        note = f"nginx unavailable ({exc}); the aiohttp bench origin served the file, without rate limits"
        if note not in notes:
            notes.append(note)
    if limit is not None:
        yield None
        return
    with OriginProcess() as origin:
        yield origin.url(f"mp4/{size}.mp4")


def _ours(server: DownloadServer, url: str, size: int, expected: str, case: Case) -> str:
    outcome, measured = peak_during(server.pid, lambda: server.download(url, "mp4"))
    cpu, peak = measured.cpu_seconds, measured.mib
    problems = wrong_download(server.video(outcome.task_id), server.storage, size, expected)
    if problems:
        raise RuntimeError("the ranged download is wrong: " + "; ".join(problems))
    server.delete(outcome.task_id)
    case.ours.append(outcome.seconds)
    case.ours_cpu.append(cpu)
    case.peak_mib.append(peak)
    return f"ours {outcome.seconds:.2f} s (CPU {cpu:.2f} s, peak RSS {peak:.1f} MiB, {outcome.events} events)"


def _aria(binary: str, url: str, out: Path, size: int, expected: str, case: Case) -> str:
    seconds, cpu = aria2c(binary, url, out, case.connections)
    if out.stat().st_size != size or sha256_of(out) != expected:
        raise RuntimeError("aria2c wrote a file other than the origin's")
    out.unlink()
    case.aria.append(seconds)
    case.aria_cpu.append(cpu)
    return f"aria2c {seconds:.2f} s (CPU {cpu:.2f} s)"


@dataclass(frozen=True)
class _Run:
    """What every round of every case shares."""

    size: int
    expected: str
    aria: str | None
    aria_out: Path
    repeat: int
    say: Callable[[str], None]

    def rounds(self, server: DownloadServer, url: str, case: Case, label: str) -> None:
        for number in range(1, self.repeat + 1):
            steps = [partial(_ours, server, url, self.size, self.expected, case)]
            if self.aria is not None:
                steps.append(partial(_aria, self.aria, url, self.aria_out, self.size, self.expected, case))
            # Who goes first alternates: the other one runs while the disk writes back the first one's file.
            order = steps if number % 2 else steps[::-1]
            self.say(f"{label}, round {number}: " + "; ".join(sorted(step() for step in order)))


def measure(options: RangedOptions, say: Callable[[str], None] = print) -> RangedResult:
    size = options.size_mib * MiB
    layout = mp4_layout(size)
    notes: list[str] = []
    aria = aria2c_binary()
    if aria is None:
        notes.append("aria2c is not installed (and cannot be here: not root or no apt-get): aria2c rows skipped")
    cases = [Case(n, limit) for limit in options.limits for n in options.connections]
    with tempfile.TemporaryDirectory(prefix="mediadl-bench-ranged-", dir=options.workdir) as tmp:
        root = Path(tmp) / "www"
        root.mkdir()
        name = f"{size}.mp4"
        say(f"writing the {options.size_mib} MiB file nginx serves")
        with (root / name).open("wb") as handle:
            for piece in layout.chunks():
                handle.write(piece)
        run = _Run(size, sha256_of(root / name), aria, Path(tmp) / "aria" / name, options.repeat, say)
        for connections in options.connections:
            env = {"DOWNLOAD_RANGE_CONNECTIONS": str(connections)}
            with warm_server(Path(tmp) / f"server-{connections}", env=env) as (server, _idle):
                for case in (c for c in cases if c.connections == connections):
                    with _origin(root, name, size, case.limit, notes) as url:
                        if url is not None:
                            run.rounds(server, url, case, case.label(options.size_mib))
    return RangedResult(options, [case for case in cases if case.ours], notes)


def parse_options(argv: Sequence[str] | None = None) -> RangedOptions:
    parser = argparse.ArgumentParser(prog="python -m bench.ranged", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=RangedOptions.size_mib)
    parser.add_argument("--repeat", type=int, default=RangedOptions.repeat)
    parser.add_argument("--connections", type=int, nargs="+", default=list(RangedOptions.connections))
    parser.add_argument("--limits", nargs="+", default=["none", "20m"], help='nginx limit_rate values; "none": no cap')
    parser.add_argument("--workdir", type=Path, help="where the temporary work directory goes")
    args = parser.parse_args(argv)
    limits = tuple(None if value == "none" else value for value in args.limits)
    return RangedOptions(args.size_mib, args.repeat, tuple(args.connections), limits, args.workdir)


def main(argv: Sequence[str] | None = None) -> None:
    result = measure(parse_options(argv))
    print()
    print(table(result.rows()))


if __name__ == "__main__":
    main()
