"""Recordings back and into one file: server RSS while ReadVideo streams a 1 GiB MP4, and the cost of the MP4
remux against the download time of real media (ffmpeg-made H.264/AAC HLS from a local origin).

    python -m bench.recording [--size-mib 1024] [--minutes 10]

ReadVideo: the server (its own process) downloads the synthetic MP4 of bench/origin.py, then one client reads
it back whole while VmRSS is sampled at 50 Hz (VmHWM reset first); the bytes are hashed against the origin's.
Remux: ffmpeg (needed on PATH for this part only) encodes `--minutes` of test video as 4 s HLS segments,
a static file server serves them, the server downloads them as HLS (timed), and the same remux the server
runs (engine/output/remux.build_mp4) is timed on the downloaded segments; then an OUTPUT_FORMAT_MP4 download
of the same stream, end to end, for comparison.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.mp4_memory import _Sampler
from bench.origin import OriginProcess
from bench.report import Row, reset_peak_rss, rss_mib, table
from bench.synthetic import MiB, Mp4Layout, Pool
from bench.target import DownloadServer, free_port
from download_server.engine.output.remux import build_mp4, runs_of
from mediadl.download.v1 import download_pb2 as pb

RSS_TARGET_MIB = 20.0
REMUX_TARGET = 0.25  # share of the stream's download time
_TERMINAL = {pb.TASK_STATUS_COMPLETED, pb.TASK_STATUS_PARTIAL_COMPLETED, pb.TASK_STATUS_FAILED}


@dataclass(frozen=True)
class RecordingOptions:
    size_mib: int = 1024
    minutes: float = 10.0
    workdir: Path | None = None


def read_video_rows(options: RecordingOptions, say: Callable[[str], None]) -> list[Row]:
    size = options.size_mib * MiB
    expected = Mp4Layout(size, Pool(MiB).pattern(), duration=3600).sha256()
    with tempfile.TemporaryDirectory(prefix="mediadl-bench-read-", dir=options.workdir) as tmp:
        with OriginProcess() as origin, DownloadServer(Path(tmp) / "server") as server:
            outcome = server.download(origin.url(f"mp4/{size}.mp4"), "mp4")
            video_id = server.stub.GetTask(pb.GetTaskRequest(task_id=outcome.task_id), metadata=server.metadata)
            video_id = video_id.task.video_id
            server.warm_up()
            idle = rss_mib(server.pid)
            exact = reset_peak_rss(server.pid)
            digest = hashlib.sha256()
            started = time.perf_counter()
            with _Sampler(server.pid) as sampler:
                request = pb.ReadVideoRequest(video_id=video_id)
                for message in server.stub.ReadVideo(request, metadata=server.metadata):
                    digest.update(message.data)
            seconds = time.perf_counter() - started
            peak = max(rss_mib(server.pid, "VmHWM"), sampler.peak) if exact else sampler.peak
    if digest.hexdigest() != expected:
        raise RuntimeError("ReadVideo returned other bytes than the origin served")
    say(f"ReadVideo {options.size_mib} MiB in {seconds:.2f} s, idle {idle:.1f} MiB, peak {peak:.1f} MiB")
    return [
        Row(
            f"ReadVideo of a {options.size_mib} MiB MP4: server RSS growth (sha256 checked)",
            f"{peak - idle:.1f} MiB ({idle:.0f} -> {peak:.0f} MiB)",
            f"< {RSS_TARGET_MIB:.0f} MiB",
            peak - idle < RSS_TARGET_MIB,
        ),
        Row("ReadVideo throughput (one client)", f"{options.size_mib / seconds:.0f} MiB/s"),
    ]


def make_stream(folder: Path, minutes: float) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed: the remux benchmark needs real media")
    folder.mkdir(parents=True, exist_ok=True)
    seconds = str(int(minutes * 60))
    subprocess.run(
        [ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", seconds,
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p", "-b:v", "1500k",
         "-c:a", "aac", "-f", "hls", "-hls_time", "4", "-hls_list_size", "0", "-hls_playlist_type", "vod",
         str(folder / "index.m3u8")],
        check=True,
    )  # fmt: skip
    return folder / "index.m3u8"


def _download(server: DownloadServer, url: str, output: int) -> tuple[float, str]:
    started = time.perf_counter()
    request = pb.CreateTaskRequest(
        video_id=str(uuid.uuid4()), liveroom_id="bench", resource_url=url, resource_type=pb.RESOURCE_TYPE_HLS,
        output_format=output,  # type: ignore[arg-type]
    )  # fmt: skip
    task = server.stub.CreateTask(request, metadata=server.metadata).task
    last = None
    for message in server.stub.StartTask(pb.StartTaskRequest(task_id=task.id), metadata=server.metadata):
        last = message.event
    if last is None or last.status != pb.TASK_STATUS_COMPLETED:
        raise RuntimeError(f"the download did not complete: {last}")
    return time.perf_counter() - started, task.id


def remux_rows(options: RecordingOptions, say: Callable[[str], None]) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="mediadl-bench-remux-", dir=options.workdir) as tmp:
        media = Path(tmp) / "media"
        say(f"encoding {options.minutes:g} minutes of H.264/AAC as HLS with ffmpeg")
        make_stream(media / "stream", options.minutes)
        port = free_port()
        files = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(media)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(1.0)
            url = f"http://127.0.0.1:{port}/stream/index.m3u8"
            with DownloadServer(Path(tmp) / "server") as server:
                server.warm_up()
                hls_seconds, task_id = _download(server, url, pb.OUTPUT_FORMAT_HLS)
                segments = sorted((server.storage / "hls" / task_id / "ts").glob("*.ts"), key=lambda p: int(p.stem))
                size_mib = sum(p.stat().st_size for p in segments) / MiB
                started = time.perf_counter()
                build_mp4(list(runs_of([(p, None, False) for p in segments])), Path(tmp) / "remuxed.mp4")
                remux_seconds = time.perf_counter() - started
                mp4_seconds, _ = _download(server, url, pb.OUTPUT_FORMAT_MP4)
        finally:
            files.terminate()
            files.wait()
    share = remux_seconds / hls_seconds
    say(f"{size_mib:.0f} MiB: download {hls_seconds:.2f} s, remux {remux_seconds:.2f} s, MP4 task {mp4_seconds:.2f} s")
    what = f"{options.minutes:g} min of 640x360 H.264/AAC HLS ({size_mib:.0f} MiB)"
    return [
        Row(f"{what}: download as HLS", f"{hls_seconds:.2f} s ({size_mib / hls_seconds:.0f} MiB/s)"),
        Row(
            f"{what}: MP4 remux (stream copy, faststart) / download time",
            f"{share:.0%} ({remux_seconds:.2f} s, {size_mib / remux_seconds:.0f} MiB/s)",
            f"<= {REMUX_TARGET:.0%}",
            share <= REMUX_TARGET,
        ),
        Row(f"{what}: OUTPUT_FORMAT_MP4 task end to end", f"{mp4_seconds:.2f} s"),
    ]


def bench_rows(options: RecordingOptions, say: Callable[[str], None] = print) -> list[Row]:
    return read_video_rows(options, say) + remux_rows(options, say)


def parse_options(argv: Sequence[str] | None = None) -> RecordingOptions:
    parser = argparse.ArgumentParser(prog="python -m bench.recording", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=RecordingOptions.size_mib)
    parser.add_argument("--minutes", type=float, default=RecordingOptions.minutes)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    return RecordingOptions(args.size_mib, args.minutes, args.workdir)


def main(argv: Sequence[str] | None = None) -> None:
    print(table(bench_rows(parse_options(argv))))


if __name__ == "__main__":
    main()
