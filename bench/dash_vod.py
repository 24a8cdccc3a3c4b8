"""DASH VOD: the whole server path against yt-dlp on one real ffmpeg-made DASH stream from a loopback origin.

    python -m bench.dash_vod [--size-mib 200] [--repeat 3] [--no-ytdlp]

ffmpeg (needed on PATH) encodes 720p H.264 (low QP, so a couple of minutes make ~200 MiB) plus AAC as a DASH
VOD with a $Number$ SegmentTemplate and 2 s segments; a static file server on loopback serves it. Every
round measures (a) CreateTask + StartTask (RESOURCE_TYPE_DASH) to COMPLETED, the local manifest.mpd and
segments written; (c) yt-dlp downloading the same best video and best audio (`-f bv,ba`, no merge,
--concurrent-fragments 8) when it is installed; then once each, with one MP4 at the end: (a') our
OUTPUT_FORMAT_MP4 task and (c') yt-dlp `-f bv+ba` merged by ffmpeg. Each side's bytes are checked against
the origin's files.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import baselines
from bench.nginx import http_server_origin
from bench.report import Row, Spread, table
from bench.target import DownloadServer
from download_server.engine.jobs import mpd
from mediadl.download.v1 import download_pb2 as pb

MiB = 1024 * 1024
YTDLP_TARGET = 1.5  # (c)/(a): at least half again as fast as yt-dlp on the same stream
_BYTES_PER_SECOND = 1.39 * MiB  # what the encoding below makes of one second of testsrc2 (measured)


@dataclass(frozen=True)
class DashOptions:
    size_mib: int = 200
    repeat: int = 3
    concurrency: int = 8
    ytdlp: bool = True
    workdir: Path | None = None


def make_stream(folder: Path, size_mib: int) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed: the DASH benchmark needs real media")
    folder.mkdir(parents=True, exist_ok=True)
    seconds = str(max(4, round(size_mib * MiB / _BYTES_PER_SECOND)))
    subprocess.run(
        [ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", seconds,
         "-c:v", "libx264", "-preset", "ultrafast", "-qp", "8", "-g", "50", "-keyint_min", "50",
         "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
         "-f", "dash", "-seg_duration", "2", "-use_template", "1", "-use_timeline", "0",
         str(folder / "manifest.mpd")],
        check=True,
    )  # fmt: skip
    return folder / "manifest.mpd"


def _download(server: DownloadServer, url: str, output: int) -> tuple[float, str]:
    started = time.perf_counter()
    request = pb.CreateTaskRequest(
        video_id=str(uuid.uuid4()), liveroom_id="bench", resource_url=url, resource_type=pb.RESOURCE_TYPE_DASH,
        output_format=output,  # type: ignore[arg-type]
    )  # fmt: skip
    task = server.stub.CreateTask(request, metadata=server.metadata, wait_for_ready=True).task
    last = None
    for message in server.stub.StartTask(pb.StartTaskRequest(task_id=task.id), metadata=server.metadata):
        last = message.event
    if last is None or last.status != pb.TASK_STATUS_COMPLETED:
        raise RuntimeError(f"the download did not complete: {last}")
    return time.perf_counter() - started, task.id


def _digest(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while block := handle.read(MiB):
                digest.update(block)
    return digest.hexdigest()


def _tracks(folder: Path) -> dict[str, list[Path]]:
    """Per kind, the origin's init section and the segments the MPD lists, in order (ffmpeg may leave a
    segment past the MPD's duration on disk: no downloader fetches that one)."""
    manifest = mpd.parse((folder / "manifest.mpd").read_bytes(), "http://origin/stream/manifest.mpd")
    tracks: dict[str, list[Path]] = {}
    for kind, track in manifest.periods[0].tracks.items():
        names = [(track.init or "").rsplit("/", 1)[-1], *(ref.url.rsplit("/", 1)[-1] for ref in track.refs)]
        tracks[kind] = [folder / name for name in names]
    return tracks


def _ytdlp(command: list[str], url: str, out: Path, fmt: str, concurrency: int) -> tuple[float, list[Path]]:
    out.mkdir(parents=True, exist_ok=True)
    args = [
        *command, "--ignore-config", "--no-cache-dir", "--quiet", "--no-progress", "--fixup", "never", "-f", fmt,
        "--concurrent-fragments", str(concurrency), "--paths", str(out), "--output", "%(format_id)s.%(ext)s", url,
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, timeout=900, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"yt-dlp failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return elapsed, sorted(p for p in out.iterdir() if p.is_file())


@dataclass
class _Runs:
    ours: list[float]
    ytdlp: list[float]
    ours_mp4: float = 0.0
    ytdlp_mp4: float = 0.0


@dataclass
class _Round:
    """One stream, one server, one origin: the steps each round runs."""

    server: DownloadServer
    url: str
    work: Path
    expected: dict[str, str]
    command: list[str] | None
    concurrency: int
    runs: _Runs

    def ours(self) -> None:
        seconds, task_id = _download(self.server, self.url, pb.OUTPUT_FORMAT_HLS)
        folder = self.server.storage / "dash" / task_id
        for kind, digest in self.expected.items():
            got = sorted(folder.glob(f"{kind}_[0-9]*.m4s"), key=lambda p: int(p.stem.split("_")[1]))
            if _digest([folder / f"{kind}_init_0.mp4", *got]) != digest:
                raise RuntimeError(f"the server's {kind} track differs from the origin's")
        self.server.delete(task_id)
        self.runs.ours.append(seconds)

    def theirs(self) -> None:
        if self.command is None:
            return
        out = self.work / "ytdlp"
        seconds, written = _ytdlp(self.command, self.url, out, "bv,ba", self.concurrency)
        if sorted(_digest([p]) for p in written) != sorted(self.expected.values()):
            raise RuntimeError("yt-dlp's files differ from the origin's tracks")
        shutil.rmtree(out)
        self.runs.ytdlp.append(seconds)

    def mp4(self) -> None:
        self.runs.ours_mp4, _ = _download(self.server, self.url, pb.OUTPUT_FORMAT_MP4)
        if self.command is not None:
            self.runs.ytdlp_mp4, _ = _ytdlp(self.command, self.url, self.work / "merged", "bv+ba", self.concurrency)


def measure(options: DashOptions, say: Callable[[str], None] = print) -> list[Row]:
    command = baselines.ytdlp_command() if options.ytdlp else None
    note = "skipped (--no-ytdlp)" if not options.ytdlp else "not installed (pip install yt-dlp)"
    if command is not None:
        note = f"yt-dlp {baselines.ytdlp_version(command)}"
        say(note)
    runs = _Runs([], [])
    with tempfile.TemporaryDirectory(prefix="mediadl-bench-dash-", dir=options.workdir) as tmp:
        media = Path(tmp) / "media"
        say(f"encoding ~{options.size_mib} MiB of 720p H.264/AAC as DASH with ffmpeg")
        source = make_stream(media / "stream", options.size_mib).parent
        size = sum(p.stat().st_size for p in source.iterdir() if p.suffix == ".m4s") / MiB
        expected = {kind: _digest(paths) for kind, paths in _tracks(source).items()}
        with http_server_origin(media) as base:
            url = f"{base}/stream/manifest.mpd"
            with DownloadServer(Path(tmp) / "server", concurrency=options.concurrency) as server:
                server.warm_up()
                steps = _Round(server, url, Path(tmp), expected, command, options.concurrency, runs)
                say("warm-up: one unmeasured run of (a)")
                steps.ours()
                runs.ours.clear()
                for number in range(1, options.repeat + 1):
                    # Alternate who goes first, so neither always inherits the other's page cache.
                    for step in (steps.ours, steps.theirs) if number % 2 else (steps.theirs, steps.ours):
                        step()
                    say(_progress(number, runs))
                steps.mp4()
                say(f"MP4: (a') {runs.ours_mp4:.2f} s  (c') {runs.ytdlp_mp4:.2f} s")
    return _rows(options, size, runs, note)


def _progress(number: int, runs: _Runs) -> str:
    line = f"round {number}: (a) {runs.ours[-1]:.2f} s"
    if runs.ytdlp:
        line += f"  (c) {runs.ytdlp[-1]:.2f} s  (c)/(a) {runs.ytdlp[-1] / runs.ours[-1]:.2f}"
    return line


def _rows(options: DashOptions, size: float, runs: _Runs, note: str) -> list[Row]:
    what = f"DASH VOD {size:.0f} MiB (720p H.264 + AAC, 2 s segments, $Number$), concurrency {options.concurrency}"
    ours = Spread.of(runs.ours)
    rows = [
        Row(f"{what}: (a) whole path, CreateTask + StartTask to COMPLETED", ours.show(" s")),
        Row("DASH (a) throughput", f"{size / ours.median:.0f} MiB/s"),
    ]
    if not runs.ytdlp:
        return [*rows, Row("DASH (c) yt-dlp -f bv,ba", note, f"(c)/(a) >= {YTDLP_TARGET:g}", None)]
    ratio = Spread.of([t / o for t, o in zip(runs.ytdlp, runs.ours, strict=True)])
    return [
        *rows,
        Row(f"DASH (c) {note} -f bv,ba, --concurrent-fragments {options.concurrency}",
            Spread.of(runs.ytdlp).show(" s")),
        Row("DASH (c)/(a)", ratio.show(), f">= {YTDLP_TARGET:g}", ratio.median >= YTDLP_TARGET),
        Row("DASH to one MP4: (a') OUTPUT_FORMAT_MP4 task / (c') yt-dlp -f bv+ba merged by ffmpeg",
            f"{runs.ours_mp4:.2f} s / {runs.ytdlp_mp4:.2f} s = (c')/(a') {runs.ytdlp_mp4 / runs.ours_mp4:.2f}"),
    ]  # fmt: skip


def parse_options(argv: Sequence[str] | None = None) -> DashOptions:
    parser = argparse.ArgumentParser(prog="python -m bench.dash_vod", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=DashOptions.size_mib)
    parser.add_argument("--repeat", type=int, default=DashOptions.repeat)
    parser.add_argument("--concurrency", type=int, default=DashOptions.concurrency)
    parser.add_argument("--no-ytdlp", action="store_true", help="skip (c) even when yt-dlp is installed")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    return DashOptions(args.size_mib, args.repeat, args.concurrency, not args.no_ytdlp, args.workdir)


def main(argv: Sequence[str] | None = None) -> None:
    print(table(measure(parse_options(argv))))


if __name__ == "__main__":
    main()
