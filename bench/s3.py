"""S3 storage: the 800-segment HLS stream published to S3 (moto's server on loopback) against the local backend,
and the download server's peak RSS while a 1 GiB MP4 goes up to S3 in multipart parts.

    python -m bench.s3 [--segments 800] [--segment-kib 256] [--repeat 2] [--size-mib 1024]

Three processes besides the bench: the origin, moto's S3 server (`python -m moto.server`, a dev dependency)
and the download server, all on loopback. The HLS rounds alternate the local and the S3 server (each its
own process, same settings but STORAGE_URL) and report S3/local wall time per round; every segment is
checked in the bucket (size listed, bytes hashed). The MP4 rounds measure the server's peak RSS as
bench/memory.py does (VmHWM reset before, VmRSS sampled at 50 Hz) and hash the completed object, twice:
with the default DOWNLOAD_RANGE_CONNECTIONS (the file in pieces over 4 connections, each whole 8 MiB of the
contiguous prefix sent as a part while later pieces arrive) and with one connection (8 MiB parts sent while
the file grows); engine/files/growing.py does both. moto keeps objects in its own process, so the server's
memory is the server's alone; moto on loopback is no measure of a real store's latency.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from bench.hls_throughput import check_files
from bench.memory import PEAK_TARGET_MIB, mp4_layout, peak_during, warm_server
from bench.origin import OriginProcess
from bench.report import Row, Spread, table
from bench.synthetic import KiB, MiB, Pool
from bench.target import DownloadServer, free_port

_BUCKET = "mediadl-bench"
_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_REGION": "us-east-1"}


@dataclass(frozen=True)
class S3Options:
    segments: int = 800
    segment_kib: int = 256
    repeat: int = 2
    size_mib: int = 1024
    workdir: Path | None = None


@dataclass(frozen=True)
class S3Result:
    options: S3Options
    local: Spread
    s3: Spread
    ratios: Spread
    idle_mib: float
    peak_mib: float  # the default settings: pieces, then parts
    mp4_seconds: float
    growing_peak_mib: float  # one connection: parts while the file grows
    growing_seconds: float

    def rows(self) -> list[Row]:
        o = self.options
        stream = f"HLS {o.segments} x {o.segment_kib} KiB"
        size = f"{o.size_mib} MiB" if o.size_mib % 1024 else f"{o.size_mib // 1024} GiB"
        return [
            Row(f"{stream}, local backend (baseline)", self.local.show(" s")),
            Row(f"{stream}, S3 backend (moto on loopback)", self.s3.show(" s")),
            Row(f"{stream}: S3 / local wall time", self.ratios.show()),
            Row(f"MP4 {size} to S3: idle server RSS (baseline)", f"{self.idle_mib:.1f} MiB"),
            Row(
                f"MP4 {size} to S3: server peak RSS (4 connections, 8 MiB parts of the prefix)",
                f"{self.peak_mib:.1f} MiB",
                f"< {PEAK_TARGET_MIB:.0f} MiB",
                self.peak_mib < PEAK_TARGET_MIB,
            ),
            Row(f"MP4 {size} to S3: download and upload time (4 connections)", f"{self.mp4_seconds:.2f} s"),
            Row(
                f"MP4 {size} to S3: server peak RSS (1 connection, 8 MiB parts as it grows)",
                f"{self.growing_peak_mib:.1f} MiB",
                f"< {PEAK_TARGET_MIB:.0f} MiB",
                self.growing_peak_mib < PEAK_TARGET_MIB,
            ),
            Row(f"MP4 {size} to S3: download and upload time (1 connection)", f"{self.growing_seconds:.2f} s"),
        ]


@dataclass(frozen=True)
class Moto:
    endpoint: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=_CREDENTIALS["AWS_REGION"],
            aws_access_key_id=_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def env(self, prefix: str) -> dict[str, str]:
        return {"STORAGE_URL": f"s3://{_BUCKET}/{prefix}", "S3_ENDPOINT_URL": self.endpoint, **_CREDENTIALS}


@contextmanager
def moto_process() -> Iterator[Moto]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        moto = Moto(f"http://127.0.0.1:{port}")
        _wait_until(lambda: moto.client().create_bucket(Bucket=_BUCKET))
        yield moto
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until(step: Callable[[], object], attempts: int = 300) -> None:
    for _ in range(attempts):
        try:
            step()
            return
        except Exception:  # not listening yet
            time.sleep(0.1)
    raise RuntimeError("moto's S3 server did not start")


def measure(options: S3Options, say: Callable[[str], None] = print) -> S3Result:
    size = options.segment_kib * KiB
    pool = Pool(size)
    expected = [hashlib.sha256(pool.segment(i)).hexdigest() for i in range(options.segments)]
    local_times: list[float] = []
    s3_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mediadl-bench-s3-", dir=options.workdir) as tmp, OriginProcess() as origin:
        work = Path(tmp)
        with moto_process() as moto:
            prefix = f"hls-{uuid.uuid4().hex[:8]}"
            url = origin.url(f"hls/{options.segments}/{size}/index.m3u8")
            with (
                DownloadServer(work / "local") as local,
                DownloadServer(work / "s3", env=moto.env(prefix)) as remote,
            ):

                def run_local() -> None:
                    outcome = local.download(url, "hls")
                    local_times.append(outcome.seconds)
                    ts = local.storage / "hls" / outcome.task_id / "ts"
                    check_files([ts / f"{i}.ts" for i in range(options.segments)], expected, "the local server")
                    local.delete(outcome.task_id)

                def run_s3() -> None:
                    outcome = remote.download(url, "hls")
                    s3_times.append(outcome.seconds)
                    _check_objects(moto, f"{prefix}/hls/{outcome.task_id}/ts/", expected)
                    remote.delete(outcome.task_id)

                say("warm-up: one unmeasured run on each backend")
                run_local()
                run_s3()
                local_times.clear()
                s3_times.clear()
                for round_number in range(1, options.repeat + 1):
                    for step in (run_local, run_s3) if round_number % 2 else (run_s3, run_local):
                        step()
                    local_s, s3_s = local_times[-1], s3_times[-1]
                    say(f"round {round_number}: local {local_s:.2f} s, S3 {s3_s:.2f} s, S3/local {s3_s / local_s:.2f}")
            idle, peak, seconds = _mp4_round(options, origin, moto, work, say)
            _, growing_peak, growing_seconds = _mp4_round(options, origin, moto, work, say, connections=1)
    ratios = [s / loc for s, loc in zip(s3_times, local_times, strict=True)]
    spreads = Spread.of(local_times), Spread.of(s3_times), Spread.of(ratios)
    return S3Result(options, *spreads, idle, peak, seconds, growing_peak, growing_seconds)


def _mp4_round(
    options: S3Options,
    origin: OriginProcess,
    moto: Moto,
    work: Path,
    say: Callable[[str], None],
    connections: int | None = None,
) -> tuple[float, float, float]:
    size = options.size_mib * MiB
    layout = mp4_layout(size)
    say(f"expected sha256 of the {options.size_mib} MiB file: computing")
    expected = layout.sha256()
    prefix = f"mp4-{uuid.uuid4().hex[:8]}"
    env = moto.env(prefix) | ({"DOWNLOAD_RANGE_CONNECTIONS": str(connections)} if connections else {})
    with warm_server(work / f"mp4-{prefix}", env=env) as (server, idle):
        outcome, peak = peak_during(server.pid, lambda: server.download(origin.url(f"mp4/{size}.mp4"), "mp4"))
        video = server.video(outcome.task_id)
        key = f"{prefix}/{video.file_path}"
        digest, stored = _object_sha256(moto, key)
        if (stored, digest, video.sha256) != (size, expected, expected):
            raise RuntimeError(f"the object {key} is wrong: {stored} bytes, sha256 {digest[:12]}")
        if moto.client().list_multipart_uploads(Bucket=_BUCKET, Prefix=prefix).get("Uploads"):
            raise RuntimeError("a multipart upload was left open")
        server.delete(outcome.task_id)
    how = f"{connections} connection(s)" if connections else "default connections"
    say(f"MP4 ({how}): {outcome.seconds:.2f} s, idle {idle:.1f} MiB, peak RSS {peak.mib:.1f} MiB")
    return idle, peak.mib, outcome.seconds


def _check_objects(moto: Moto, prefix: str, expected: Sequence[str]) -> None:
    client = moto.client()
    for index, digest in enumerate(expected):
        got, _ = _object_sha256(moto, f"{prefix}{index}.ts", client)
        if got != digest:
            raise RuntimeError(f"the bucket holds a wrong or no segment {index}")


def _object_sha256(moto: Moto, key: str, client: Any = None) -> tuple[str, int]:
    client = client or moto.client()
    try:
        body = client.get_object(Bucket=_BUCKET, Key=key)["Body"]
    except client.exceptions.NoSuchKey:
        return "", -1
    digest, size = hashlib.sha256(), 0
    for block in body.iter_chunks(MiB):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def parse_options(argv: Sequence[str] | None = None) -> S3Options:
    parser = argparse.ArgumentParser(prog="python -m bench.s3", description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=S3Options.segments)
    parser.add_argument("--segment-kib", type=int, default=S3Options.segment_kib)
    parser.add_argument("--repeat", type=int, default=S3Options.repeat)
    parser.add_argument("--size-mib", type=int, default=S3Options.size_mib)
    parser.add_argument("--workdir", type=Path, help="where the temporary work directory goes")
    args = parser.parse_args(argv)
    return S3Options(args.segments, args.segment_kib, args.repeat, args.size_mib, args.workdir)


def main(argv: Sequence[str] | None = None) -> None:
    result = measure(parse_options(argv))
    print()
    print(table(result.rows()))


if __name__ == "__main__":
    main()
