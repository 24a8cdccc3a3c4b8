"""Recordings back and into one file: server RSS while ReadVideo streams a 1 GiB MP4, and the cost of the MP4
remux against the download time of real media (ffmpeg-made H.264/AAC HLS from a local origin).

    python -m bench.recording [--size-mib 1024] [--minutes 10] [--rounds 2] [--skip-read] [--replay-mib-s 60]

ReadVideo: the server (its own process) downloads the synthetic MP4 of bench/origin.py, then one client reads
it back whole while VmRSS is sampled at 50 Hz (VmHWM reset first); the bytes are hashed against the origin's.
MP4: ffmpeg (needed on PATH for this part only) encodes `--minutes` of test video as 4 s HLS segments,
nginx (else Python's http.server) serves them on loopback, and the server downloads them
`--rounds` times as OUTPUT_FORMAT_HLS (the download time) and as OUTPUT_FORMAT_MP4, alternately. What the
user waits for the MP4 is the time from the last segment finished (its file's last write) to the MP4 task's
terminal event; its share of the download time has a target of 25%. For reference: the whole remux after
the download (engine/output/remux.build_mp4, what a resumed run falls back to), and the incremental build
(engine/output/live_mux.py) alone, fed the segments at the download's pace and at `--replay-mib-s` (a fast
real link), with each moov-first layout (fragmented, the server's; faststart, a second pass at the end).
The whole remux's CPU time is set against `ffmpeg -c copy` of the same segments (C only, no Python).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.memory import PeakSampler
from bench.nginx import NginxUnavailable, http_server_origin, nginx_origin
from bench.origin import OriginProcess
from bench.report import Row, reset_peak_rss, rss_mib, table
from bench.synthetic import MiB, Mp4Layout, Pool
from bench.target import DownloadServer
from download_server.engine.output.live_mux import FRAGMENTED, LiveMux, Piece
from download_server.engine.output.remux import build_mp4, runs_of
from mediadl.download.v1 import download_pb2 as pb

T = TypeVar("T")
RSS_TARGET_MIB = 20.0
REMUX_TARGET = 0.25  # share of the stream's download time
_TERMINAL = {pb.TASK_STATUS_COMPLETED, pb.TASK_STATUS_PARTIAL_COMPLETED, pb.TASK_STATUS_FAILED}


@dataclass(frozen=True)
class RecordingOptions:
    size_mib: int = 1024
    minutes: float = 10.0
    workdir: Path | None = None
    rounds: int = 2
    skip_read: bool = False
    replay_mib_s: float = 60.0  # a fast real link (about 500 Mbit/s), for the replay of the incremental build


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
            with PeakSampler(server.pid) as sampler:
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


@dataclass(frozen=True)
class Download:
    seconds: float  # CreateTask to the terminal event, as the client sees it
    task_id: str
    ended_at: float  # time.time() of the terminal event


def _download(server: DownloadServer, url: str, output: int) -> Download:
    started = time.perf_counter()
    request = pb.CreateTaskRequest(
        video_id=str(uuid.uuid4()), liveroom_id="bench", resource_url=url, resource_type=pb.RESOURCE_TYPE_HLS,
        output_format=output,  # type: ignore[arg-type]
    )  # fmt: skip
    task = server.stub.CreateTask(request, metadata=server.metadata).task
    last = None
    for message in server.stub.StartTask(pb.StartTaskRequest(task_id=task.id), metadata=server.metadata):
        last = message.event
    ended_at = time.time()
    if last is None or last.status != pb.TASK_STATUS_COMPLETED:
        raise RuntimeError(f"the download did not complete: {last}")
    return Download(time.perf_counter() - started, task.id, ended_at)


def _segments(server: DownloadServer, task_id: str) -> list[Path]:
    folder = server.storage / "hls" / task_id / "ts"
    return sorted(folder.glob("*.ts"), key=lambda p: int(p.stem))


def _last_segment_at(server: DownloadServer, task_id: str) -> float:
    """When the last segment was finished: its file's last write (renamed to its final name right after)."""
    return max(p.stat().st_mtime for p in _segments(server, task_id))


@dataclass(frozen=True)
class Measured:
    hls: list[float]  # OUTPUT_FORMAT_HLS tasks end to end: the download time
    mp4: list[float]  # OUTPUT_FORMAT_MP4 tasks end to end
    waits: list[float]  # last segment finished -> the MP4 task's terminal event (its MP4 ready)
    whole: float  # the whole remux of the downloaded segments after the download (the fallback)
    cpu: tuple[float, float]  # CPU seconds of that remux, and of `ffmpeg -c copy` of the same segments
    size_mib: float
    replay: dict[tuple[str, str], tuple[float, float]]  # (layout, pace) -> (feed seconds, time left after it)


def _measure(server: DownloadServer, url: str, options: RecordingOptions, tmp: Path) -> Measured:
    rounds = options.rounds
    hls, mp4, waits = [], [], []
    segments: list[Path] = []
    for _ in range(rounds):  # alternated, so both kinds see the same machine load
        got = _download(server, url, pb.OUTPUT_FORMAT_HLS)
        hls.append(got.seconds)
        segments = _segments(server, got.task_id)
        got = _download(server, url, pb.OUTPUT_FORMAT_MP4)
        mp4.append(got.seconds)
        waits.append(got.ended_at - _last_segment_at(server, got.task_id))
    started, cpu = time.perf_counter(), time.process_time()
    build_mp4(list(runs_of([(p, None, False) for p in segments])), tmp / "remuxed.mp4")
    whole, cpu = time.perf_counter() - started, time.process_time() - cpu
    size_mib = sum(p.stat().st_size for p in segments) / MiB
    paces = {"the download's pace": min(hls), f"{options.replay_mib_s:g} MiB/s": size_mib / options.replay_mib_s}
    replays = {
        (name, pace): (seconds, _replay(segments, seconds, tmp / f"{name}.mp4", layout))
        for pace, seconds in paces.items()
        for name, layout in _LAYOUTS.items()
    }
    return Measured(hls, mp4, waits, whole, (cpu, _ffmpeg_copy(segments, tmp / "ffmpeg.mp4")), size_mib, replays)


def _ffmpeg_copy(segments: list[Path], target: Path) -> float:
    """CPU seconds of the C-only reference: ffmpeg's stream copy of the same segments into a faststart MP4."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    source = "concat:" + "|".join(str(p) for p in segments)
    command = ["ffmpeg", "-v", "error", "-y", "-i", source, "-c", "copy", "-movflags", "+faststart", str(target)]
    subprocess.run(command, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


# moov ahead of mdat, two ways: a fragmented MP4 (moov first, nothing rewritten; the server's choice) or a
# plain MP4 that FFmpeg's faststart rewrites at the end (a second pass over the file).
_LAYOUTS = {"fragmented": FRAGMENTED, "faststart": {"movflags": "+faststart"}}


class _NoRename:
    """The replay calls LiveMux.close() and never renames through the run's fenced writer."""

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        raise AssertionError("not used by the replay")


def _replay(segments: list[Path], seconds: float, target: Path, options: dict[str, str]) -> float:
    """The incremental build (engine/output/live_mux.py) fed the segments over `seconds`, in batches of 8
    finishing out of order as the server's workers do; the time its close() takes after the last one."""
    mux = LiveMux(target, _NoRename(), options)
    mux.planned(range(len(segments)))
    order = list(range(len(segments)))
    for start in range(0, len(order), 8):
        order[start : start + 8] = reversed(order[start : start + 8])
    began = time.perf_counter()
    for count, index in enumerate(order, 1):
        time.sleep(max(0.0, began + seconds * count / len(order) - time.perf_counter()))
        mux.finished(Piece(index, segments[index], None, False))
    fed = time.perf_counter()
    if not mux.close(list(range(len(segments)))):
        raise RuntimeError(f"the incremental build failed: {mux.aborted}")
    return time.perf_counter() - fed


def remux_rows(options: RecordingOptions, say: Callable[[str], None]) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mediadl-bench-remux-", dir=options.workdir) as tmp:
        media = Path(tmp) / "media"
        say(f"encoding {options.minutes:g} minutes of H.264/AAC as HLS with ffmpeg")
        make_stream(media / "stream", options.minutes)
        with DownloadServer(Path(tmp) / "server") as server:
            server.warm_up()
            with _origin(media) as (base, origin):
                got = _measure(server, f"{base}/stream/index.m3u8", options, Path(tmp))
            rows += _remux_table(options, got, say, origin)
    return rows


@contextlib.contextmanager
def _origin(root: Path) -> Iterator[tuple[str, str]]:
    """nginx on loopback (sendfile: it takes little CPU from the server, as a remote origin takes none);
    Python's http.server when nginx cannot be had."""
    try:
        with nginx_origin(root, access_log=False) as base:
            yield base, "nginx"
            return
    except NginxUnavailable:
        pass
    with http_server_origin(root) as base:
        yield base, "http.server"


def _spread(values: list[float], unit: str = " s") -> str:
    low, high = min(values), max(values)
    return f"{low:.2f}{unit}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}{unit}"


def _shares(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.0%}" if f"{low:.0%}" == f"{high:.0%}" else f"{low:.0%}-{high:.0%}"


def _remux_table(options: RecordingOptions, got: Measured, say: Callable[[str], None], origin: str) -> list[Row]:
    # Each wait against the HLS download of its own round: the share the user waits on top of the download.
    shares = [wait / hls for wait, hls in zip(got.waits, got.hls, strict=True)]
    extra = [(mp4 - hls) / hls for mp4, hls in zip(got.mp4, got.hls, strict=True)]
    pace = min(got.hls)
    say(f"{origin}, {got.size_mib:.0f} MiB: HLS {got.hls}, MP4 {got.mp4}, waits {got.waits}, remux {got.whole:.2f} s")
    what = f"{options.minutes:g} min of 640x360 H.264/AAC HLS ({got.size_mib:.0f} MiB, loopback {origin})"
    return [
        Row(f"{what}: OUTPUT_FORMAT_HLS task (the download time)", _spread(got.hls)),
        Row(
            f"{what}: OUTPUT_FORMAT_MP4, last segment finished -> MP4 ready / download time",
            f"{_shares(shares)} ({_spread(got.waits)})",
            f"<= {REMUX_TARGET:.0%}",
            max(shares) <= REMUX_TARGET,
        ),
        Row(f"{what}: OUTPUT_FORMAT_MP4 task end to end", f"{_spread(got.mp4)} (+{_shares(extra)} over HLS)"),
        Row(
            f"{what}: whole remux after the download (the fallback) / download time",
            f"{got.whole / pace:.0%} ({got.whole:.2f} s, {got.size_mib / got.whole:.0f} MiB/s)",
        ),
        Row(
            f"{what}: whole remux per CPU-second, against `ffmpeg -c copy` of the same segments (C only)",
            f"{got.size_mib / got.cpu[0]:.0f} MiB/s ({got.cpu[0]:.2f} s); ffmpeg {got.size_mib / got.cpu[1]:.0f} MiB/s"
            f" ({got.cpu[1]:.2f} s)",
        ),
    ] + [
        Row(f"{what}: incremental build alone, fed at {pace}, {name}: left after the last segment / feed time",
            f"{left / fed:.0%} ({left:.2f} s after {fed:.2f} s)")
        for (name, pace), (fed, left) in got.replay.items()
    ]  # fmt: skip


def bench_rows(options: RecordingOptions, say: Callable[[str], None] = print) -> list[Row]:
    return ([] if options.skip_read else read_video_rows(options, say)) + remux_rows(options, say)


def parse_options(argv: Sequence[str] | None = None) -> RecordingOptions:
    parser = argparse.ArgumentParser(prog="python -m bench.recording", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=RecordingOptions.size_mib)
    parser.add_argument("--minutes", type=float, default=RecordingOptions.minutes)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--rounds", type=int, default=RecordingOptions.rounds, help="HLS and MP4 downloads each")
    parser.add_argument("--skip-read", action="store_true", help="only the MP4 part")
    parser.add_argument("--replay-mib-s", type=float, default=RecordingOptions.replay_mib_s)
    args = parser.parse_args(argv)
    return RecordingOptions(args.size_mib, args.minutes, args.workdir, args.rounds, args.skip_read, args.replay_mib_s)


def main(argv: Sequence[str] | None = None) -> None:
    print(table(bench_rows(parse_options(argv))))


if __name__ == "__main__":
    main()
