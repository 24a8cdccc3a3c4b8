"""Live window cost: the download server's CPU and RSS while it records a live playlist of 100k entries that
slides by one every second, against the same server idle.

    python -m bench.live_window [--window 100000] [--seconds 20] [--allocator malloc|pymalloc]

The origin (its own process) serves the window; the server plans it once (a whole parse, then fetches the
window's tiny segments: the catch-up, not measured), and from then on each poll brings one new entry. What
is measured is that steady state: CPU seconds over `--seconds` of wall time from /proc/<pid>/stat, and VmRSS
at its end against VmRSS before the recording started.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from bench.origin import OriginProcess
from bench.report import Row, cpu_seconds, rss_mib, table
from bench.target import DownloadServer
from mediadl.download.v1 import download_pb2 as pb

CPU_TARGET = 0.10  # share of one core
RSS_TARGET_MIB = 50.0


@dataclass(frozen=True)
class LiveOptions:
    window: int = 100_000
    seconds: float = 20.0
    workdir: Path | None = None
    # The server's allocator: "pymalloc", CPython's default, as `make run`, docker-compose and k8s run it
    # (no PYTHONMALLOC), or "malloc" (glibc for every object) to compare.
    allocator: str = "pymalloc"


@dataclass(frozen=True)
class LiveResult:
    options: LiveOptions
    catch_up_seconds: float
    cpu_share: float
    idle_mib: float
    rss_mib: float
    polls: int

    def rows(self) -> list[Row]:
        window = f"{self.options.window:,}"
        growth = self.rss_mib - self.idle_mib
        return [
            Row(
                f"Live window of {window} sliding 1/s: catch-up (whole plan + fetch)", f"{self.catch_up_seconds:.0f} s"
            ),
            Row(
                f"Live window of {window}: server CPU in steady state ({self.polls} polls)",
                f"{self.cpu_share:.1%} of a core",
                f"<= {CPU_TARGET:.0%}",
                self.cpu_share <= CPU_TARGET,
            ),
            Row(
                f"Live window of {window}: server RSS over idle (PYTHONMALLOC={self.options.allocator})",
                f"{growth:.1f} MiB ({self.idle_mib:.0f} -> {self.rss_mib:.0f} MiB)",
                f"< {RSS_TARGET_MIB:.0f} MiB",
                growth < RSS_TARGET_MIB,
            ),
        ]


def measure(options: LiveOptions, say: Callable[[str], None] = print) -> LiveResult:
    with tempfile.TemporaryDirectory(prefix="mediadl-bench-live-", dir=options.workdir) as tmp:
        with (
            OriginProcess() as origin,
            DownloadServer(Path(tmp) / "server", env={"PYTHONMALLOC": options.allocator}) as server,
        ):
            server.warm_up()
            idle = rss_mib(server.pid)
            stub, metadata = server.stub, server.metadata
            task = stub.CreateTask(
                pb.CreateTaskRequest(
                    video_id="00000000-0000-4000-8000-000000000001",
                    liveroom_id="bench",
                    resource_url=origin.url(f"live/{options.window}/index.m3u8"),
                    resource_type=pb.RESOURCE_TYPE_HLS,
                ),
                metadata=metadata,
            ).task
            stream = stub.StartTask(pb.StartTaskRequest(task_id=task.id), metadata=metadata)
            threading.Thread(target=_drain, args=(stream,), daemon=True).start()
            started = time.monotonic()
            while True:  # the catch-up: every entry of the first window on disk
                current = stub.GetTask(pb.GetTaskRequest(task_id=task.id), metadata=metadata).task
                if current.segments_total >= options.window and current.segments_done >= current.segments_total - 5:
                    break
                time.sleep(1.0)
            catch_up = time.monotonic() - started
            say(f"caught up in {catch_up:.0f} s ({current.segments_done} segments); measuring {options.seconds:.0f} s")
            before_cpu, before_polls = cpu_seconds(server.pid), origin.stats()["requests"]
            time.sleep(options.seconds)
            share = (cpu_seconds(server.pid) - before_cpu) / options.seconds
            polls = (origin.stats()["requests"] - before_polls) // 2  # each poll: the playlist and one segment
            rss = rss_mib(server.pid)
            stream.cancel()
            stub.CancelTask(pb.CancelTaskRequest(task_id=task.id), metadata=metadata)
    return LiveResult(options, catch_up, share, idle, rss, polls)


def _drain(stream: Any) -> None:
    """Read the StartTask stream (so the server keeps sending) until the benchmark cancels it."""
    with contextlib.suppress(grpc.RpcError):
        for _ in stream:
            pass


def parse_options(argv: Sequence[str] | None = None) -> LiveOptions:
    parser = argparse.ArgumentParser(prog="python -m bench.live_window", description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=int, default=LiveOptions.window)
    parser.add_argument("--seconds", type=float, default=LiveOptions.seconds)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--allocator", choices=["malloc", "pymalloc"], default=LiveOptions.allocator)
    args = parser.parse_args(argv)
    return LiveOptions(args.window, args.seconds, args.workdir, args.allocator)


def main(argv: Sequence[str] | None = None) -> None:
    result = measure(parse_options(argv))
    print()
    print(table(result.rows()))


if __name__ == "__main__":
    main()
