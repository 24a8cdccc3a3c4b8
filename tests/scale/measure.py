"""One download replica against three on one PostgreSQL: the same HLS workload, wall time to all COMPLETED.

    .venv/bin/python -m tests.scale.measure [--tasks 6] [--segments 200] [--kib 128] [--repeat 2]

Not part of the pass/fail suite. The origin is bench/origin.py in its own process; every task's segments
are checked against the synthetic stream's hashes. Three configurations: one replica with
DOWNLOAD_MAX_ACTIVE_TASKS=2, three replicas with 2 each (three times the slots), and one replica with 6
(the same slots as three: what separate processes add on this machine).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.origin import OriginProcess
from bench.synthetic import KiB, Pool
from mediadl.download.v1 import download_pb2 as pb
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.scale.cluster import cluster, events_until_end, until

CONFIGS = [("1 replica x 2 slots", 1, 2), ("3 replicas x 2 slots", 3, 2), ("1 replica x 6 slots", 1, 6)]


async def one_run(replicas: int, slots: int, url: str, tasks: int, expected: list[str]) -> tuple[float, float]:
    database = create_postgres_database()
    try:
        with tempfile.TemporaryDirectory(prefix="mediadl-scale-") as tmp:
            names = tuple("abc"[:replicas])
            env = {"DOWNLOAD_MAX_ACTIVE_TASKS": str(slots), "DOWNLOAD_SEGMENT_CONCURRENCY": "8", "LOG_LEVEL": "WARNING"}
            async with cluster(database, Path(tmp), names, **env) as c:
                created = [await c.create("a", url) for _ in range(tasks)]
                cpu_before = sum(cpu_seconds(r.proc.pid) for r in c.replicas.values())
                began = time.perf_counter()
                for task in created:
                    call = c.start("a", task.id)
                    await until(call, lambda e: True)  # started (or queued) once the first event is here
                    call.cancel()  # closing the stream never stops the download
                ends = await asyncio.gather(*(events_until_end(c.watch("a", t.id)) for t in created))
                took = time.perf_counter() - began
                cpu = sum(cpu_seconds(r.proc.pid) for r in c.replicas.values()) - cpu_before
                assert all(events[-1].status == pb.TASK_STATUS_COMPLETED for events in ends)
                for task in created:
                    folder = c.storage / "hls" / task.id / "ts"
                    files = sorted(folder.iterdir(), key=lambda p: int(p.stem))
                    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in files] == expected
                owners = {owner for owner, _ in (await c.leases()).values()}
                ran_on = sorted(o or "?" for o in owners)
                print(f"    {took:.2f} s, replicas' CPU {cpu:.2f} s, ran on {ran_on}", flush=True)
                return took, cpu
    finally:
        drop_postgres_database(database)


async def main(tasks: int, segments: int, kib: int, repeat: int) -> None:
    size = kib * KiB
    pool = Pool(size)
    expected = [hashlib.sha256(pool.segment(i)).hexdigest() for i in range(segments)]
    total = tasks * segments * size / (1024 * 1024)
    print(f"{tasks} tasks x {segments} segments x {kib} KiB = {total:.0f} MiB per run; {os.cpu_count()} CPU(s)")
    results: dict[str, list[tuple[float, float]]] = {}
    with OriginProcess() as origin:
        url = origin.url(f"hls/{segments}/{size}/index.m3u8")
        for _ in range(repeat):
            for label, replicas, slots in CONFIGS:
                print(f"  {label}", flush=True)
                results.setdefault(label, []).append(await one_run(replicas, slots, url, tasks, expected))
    print("\n| configuration | median wall time | throughput | replicas' CPU (median) | wall times |")
    print("| --- | --- | --- | --- | --- |")
    for label, runs in results.items():
        median = statistics.median(t for t, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        times = ", ".join(f"{t:.2f}" for t, _ in runs)
        print(f"| {label} | {median:.2f} s | {total / median:.0f} MiB/s | {cpu:.2f} s | {times} |")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.scale.measure", description=__doc__)
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--kib", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.segments, args.kib, args.repeat))
