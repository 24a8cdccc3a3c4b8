"""Progress fan-out: 1,000 WatchTask streams on one running download; delay publish -> receipt, server RSS.

    python -m bench.fanout [--quick] [--streams N] [--seconds N] [--clients N]

`python -m download_server` (its own process, fresh SQLite) downloads a local HLS stream whose segments the
origin (another process) serves slowly, so the download lasts about `--seconds`. `--clients` processes open
the streams (over one connection each), all before the download starts; every event's delay is its receipt
time minus its event_time (set when the engine publishes it; one machine, one clock). The baseline is one
stream alone on the same download kind. Targets (issue 6): p99 delay < 100 ms, server RSS growth < 100 MiB.
Client processes share the CPUs with the server, so on a small machine their own receive work is in the delay.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import secrets
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import grpc

from bench.report import Row
from bench.target import free_port
from bench.unary_stack import markdown_table, percentile, rss_bytes, server_process, token_for
from mediadl.download.v1 import download_pb2 as pb
from mediadl.download.v1 import download_pb2_grpc

SEGMENT = (b"\x47" + bytes(187)) * 8  # eight MPEG-TS packets: small, so the disk is not what is measured
SEGMENT_DELAY = 0.2  # seconds the origin holds each segment
SEGMENT_CONCURRENCY = 8  # the server's default DOWNLOAD_SEGMENT_CONCURRENCY
MiB = 1024 * 1024


# --- the origin (a child process) -----------------------------------------------------------------------


async def _serve_origin(port: int, segments: int) -> None:
    from aiohttp import web

    playlist = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
    playlist += "".join(f"#EXTINF:2.0,\nseg{i}.ts\n" for i in range(segments)) + "#EXT-X-ENDLIST\n"

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=playlist, content_type="application/vnd.apple.mpegurl")

    async def segment(_request: web.Request) -> web.Response:
        await asyncio.sleep(SEGMENT_DELAY)
        return web.Response(body=SEGMENT, content_type="video/mp2t")

    app = web.Application()
    app.router.add_get("/{name}.m3u8", index)
    app.router.add_get("/{name}.ts", segment)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


# --- the watchers (child processes) ---------------------------------------------------------------------


@dataclass
class WatchResult:
    delays_ms: list[float] = field(default_factory=list)
    streams_ended: int = 0
    errors: list[str] = field(default_factory=list)


async def _watch(port: int, token: str, task_id: str, streams: int, ready: Connection, seconds: float) -> WatchResult:
    md = (("authorization", f"Bearer {token}"),)
    result = WatchResult()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
        stub = download_pb2_grpc.DownloadServiceStub(ch)  # type: ignore[no-untyped-call]
        calls = [stub.WatchTask(pb.WatchTaskRequest(task_id=task_id), metadata=md) for _ in range(streams)]
        for call in calls:
            await call.read()  # the current state: the stream is open
        ready.send("ready")

        async def drain(call: grpc.aio.UnaryStreamCall[pb.WatchTaskRequest, pb.WatchTaskResponse]) -> None:
            try:
                while (message := await call.read()) is not grpc.aio.EOF:
                    received = time.time()
                    sent = message.event.event_time.seconds + message.event.event_time.nanos / 1e9
                    result.delays_ms.append((received - sent) * 1000)
                result.streams_ended += 1
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.CANCELLED:
                    result.errors.append(f"{err.code().name}: {err.details()}")

        drains = [asyncio.ensure_future(drain(call)) for call in calls]
        _done, pending = await asyncio.wait(drains, timeout=seconds * 3 + 30)
        for call in calls:
            call.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return result


def _watcher_main(port: int, token: str, task_id: str, streams: int, pipe: Connection, seconds: float) -> None:
    result = asyncio.run(_watch(port, token, task_id, streams, pipe, seconds))
    pipe.send(result)


# --- the benchmark --------------------------------------------------------------------------------------


@dataclass
class Run:
    streams: int
    delays_ms: list[float]
    ended: int
    errors: list[str]
    rss_before: int
    rss_peak: int
    seconds: float
    server_cpu_seconds: float
    final_status: str = ""  # the task's status once every watcher is done (GetTask)
    segments: tuple[int, int] = (0, 0)  # (done, total) then

    def problems(self) -> list[str]:
        """Why this run's figures cannot count (empty: they can): every stream must have ended by itself
        after the terminal event, none failed, and the download must have completed whole."""
        found = []
        if self.errors:
            found.append(f"{len(self.errors)} stream error(s), first: {self.errors[0]}")
        if self.ended != self.streams:
            found.append(f"{self.streams - self.ended} of {self.streams} stream(s) never ended")
        done, total = self.segments
        if self.final_status != "TASK_STATUS_COMPLETED" or done != total or not total:
            found.append(f"the download ended {self.final_status or 'unknown'} with {done}/{total} segments")
        if not self.delays_ms:
            found.append("no event was received")
        return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fan_out(
    download_port: int, pid: int, origin_port: int, token: str, streams: int, clients: int, seconds: float
) -> Run:
    """One download watched by `streams` WatchTask streams from `clients` processes."""
    with grpc.insecure_channel(f"127.0.0.1:{download_port}") as channel:
        stub = download_pb2_grpc.DownloadServiceStub(channel)  # type: ignore[no-untyped-call]
        md = (("authorization", f"Bearer {token}"),)
        task = stub.CreateTask(
            pb.CreateTaskRequest(
                video_id=str(uuid.uuid4()),
                liveroom_id="fanout",
                liveroom_title="fan-out benchmark",
                liveroom_url="https://live.example.com/fanout",
                resource_url=f"http://127.0.0.1:{origin_port}/index.m3u8",
                resource_type=pb.RESOURCE_TYPE_HLS,
            ),
            metadata=md,
        ).task
        rss_before = rss_bytes(pid)
        ctx = mp.get_context("spawn")
        pipes, workers = [], []
        for i in range(clients):
            share = streams // clients + (1 if i < streams % clients else 0)
            parent, child = ctx.Pipe()
            worker = ctx.Process(
                target=_watcher_main, args=(download_port, token, task.id, share, child, seconds), daemon=True
            )
            worker.start()
            pipes.append(parent)
            workers.append(worker)
        for pipe in pipes:
            if pipe.recv() != "ready":
                raise RuntimeError("a watcher did not get its streams open")
        peak = [rss_before]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.1):
                peak[0] = max(peak[0], rss_bytes(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        cpu_before = cpu_seconds(pid)
        start = stub.StartTask(pb.StartTaskRequest(task_id=task.id), metadata=md)
        next(iter(start))  # the download has begun; closing this stream does not stop it
        start.cancel()
        results: list[WatchResult] = [pipe.recv() for pipe in pipes]
        elapsed = time.monotonic() - started
        server_cpu = cpu_seconds(pid) - cpu_before
        sampling.set()
        sampler.join()
        for worker in workers:
            worker.join(30)
        final = stub.GetTask(pb.GetTaskRequest(task_id=task.id), metadata=md).task
    delays = [d for r in results for d in r.delays_ms]
    return Run(
        streams,
        delays,
        sum(r.streams_ended for r in results),
        [e for r in results for e in r.errors],
        rss_before,
        max(peak[0], rss_bytes(pid)),
        elapsed,
        server_cpu,
        pb.TaskStatus.Name(final.status),
        (final.segments_done, final.segments_total),
    )


def measure(streams: int, seconds: float, clients: int) -> list[Run]:
    """[baseline (one stream), fan-out (`streams` from `clients` processes)], each on a fresh server."""
    segments = math.ceil(seconds * SEGMENT_CONCURRENCY / SEGMENT_DELAY)
    secret = secrets.token_urlsafe(48)
    token = token_for(secret, str(uuid.uuid4()))
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        folder = Path(tmp)
        origin_port = free_port()
        origin_args = ["-m", "bench.fanout", "--serve-origin", str(origin_port), "--segments", str(segments)]
        with server_process(origin_args, {}, origin_port, folder / "origin.log", health=False):
            for label, count, procs in (("baseline", 1, 1), ("fan-out", streams, clients)):
                port = free_port()
                env = {
                    "JWT_SECRET_KEY": secret,
                    "DOWNLOAD_GRPC_ADDR": f"127.0.0.1:{port}",
                    "DOWNLOAD_DATABASE_URL": f"sqlite:///{folder / f'{label}.db'}",
                    "STORAGE_DIR": str(folder / f"storage-{label}"),
                    "DOWNLOAD_ALLOW_PRIVATE_NETWORKS": "true",
                }
                with server_process(["-m", "download_server"], env, port, folder / f"{label}.log") as server:
                    runs.append(fan_out(port, server.pid, origin_port, token, count, procs, seconds))
    return runs


def summary_rows(runs: list[Run]) -> list[Row]:
    base, fan = runs[0], runs[-1]
    sound = not base.problems() and not fan.problems()
    p99 = percentile(fan.delays_ms, 99)
    growth = (fan.rss_peak - fan.rss_before) / MiB
    return [
        Row(
            f"WatchTask fan-out, {fan.streams} streams: publish -> receipt p99 (bench/fanout.py)",
            f"{p99:.0f} ms (p50 {percentile(fan.delays_ms, 50):.0f} ms; 1 stream p99 "
            f"{percentile(base.delays_ms, 99):.0f} ms)",
            "< 100 ms",
            sound and p99 < 100,
        ),
        Row(
            f"Server RSS growth with {fan.streams} streams (bench/fanout.py)",
            f"{growth:.1f} MiB ({fan.rss_before / MiB:.0f} -> {fan.rss_peak / MiB:.0f} MiB)",
            "< 100 MiB",
            sound and growth < 100,
        ),
    ]


def bench_rows(say: Callable[[str], None], *, quick: bool = False, seconds: float = 20.0) -> list[Row]:
    """For bench.run_all: measure, tell `say` the detailed table, return the summary rows."""
    runs = measure(20, 2.0, 1) if quick else measure(1000, seconds, 4)
    for line in report(runs).splitlines():
        say(line)
    return summary_rows(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tiny run (seconds), for smoke tests")
    parser.add_argument("--streams", type=int, default=1000, help="WatchTask streams (default 1000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the download lasts (default 20)")
    parser.add_argument("--clients", type=int, default=4, help="watcher processes (default 4)")
    parser.add_argument("--serve-origin", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--segments", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_origin is not None:
        asyncio.run(_serve_origin(args.serve_origin, args.segments))
        return 0
    streams, seconds, clients = (20, 2.0, 1) if args.quick else (args.streams, args.seconds, args.clients)
    print(f"fan-out: {streams} WatchTask streams from {clients} process(es), {os.cpu_count()} CPU(s),")
    print(f"a download of about {seconds:g} s")
    runs = measure(streams, seconds, clients)
    print()
    print(report(runs))
    return 0


def report(runs: list[Run]) -> str:
    base = runs[0]
    rows = []
    for name, run in zip(("1 stream (baseline)", f"{runs[-1].streams} streams"), runs, strict=True):
        p99 = percentile(run.delays_ms, 99)
        rows.append(
            [
                name,
                len(run.delays_ms),
                f"{percentile(run.delays_ms, 50):.1f}",
                f"{p99:.1f}",
                f"{p99 / percentile(base.delays_ms, 99):.1f}" if base.delays_ms else "-",
                f"{(run.rss_peak - run.rss_before) / MiB:.1f}",
                f"{run.server_cpu_seconds / run.seconds:.0%}",
                f"{run.server_cpu_seconds / len(run.delays_ms) * 1e6:,.0f}" if run.delays_ms else "-",
                f"{run.ended}/{run.streams}",
                len(run.errors),
            ]
        )
    table = markdown_table(
        [
            "streams",
            "events received",
            "p50 ms",
            "p99 ms",
            "p99 x baseline",
            "RSS growth MiB",
            "server CPU",
            "server CPU us/message",
            "ended",
            "errors",
        ],
        rows,
    )
    fan = runs[-1]
    p99 = percentile(fan.delays_ms, 99)
    growth = (fan.rss_peak - fan.rss_before) / MiB
    problems = [
        f"{name}: {problem}" for name, run in (("baseline", base), ("fan-out", fan)) for problem in run.problems()
    ]
    unsound = "NOT met: the run failed its checks" if problems else ""
    lines = [
        table,
        "",
        f"- publish -> receipt p99 with {fan.streams} streams: {p99:.1f} ms "
        f"(target < 100 ms: {unsound or ('met' if p99 < 100 else 'NOT met')})",
        f"- server RSS {fan.rss_before / MiB:.0f} -> {fan.rss_peak / MiB:.0f} MiB, growth {growth:.1f} MiB "
        f"(target < 100 MiB: {unsound or ('met' if growth < 100 else 'NOT met')})",
        *(f"- check failed: {problem}" for problem in problems),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
