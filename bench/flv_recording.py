"""HTTP-FLV recording throughput: the FLV job (tags parsed, timestamps repaired) against the plain file job on
the same bytes, through the whole server.

    python -m bench.flv_recording [--size-mib 100] [--repeat 3]

ffmpeg (on PATH) makes 10 s of H.264/AAC FLV; its media tags are repeated with rising timestamps up to
`--size-mib`. A small origin in its own process serves the file with a Content-Length (`/vod/...`) and as a
live stream (`/live/<n>/...`: chunked, no length, 404 after its one answer, so the recording ends after the
outage grace, set to 0.2 s here). Each round times CreateTask + StartTask until COMPLETED for (a) the bytes
as an MP4 task (the baseline: the same fetcher and file sink, no parsing), (b) an FLV VOD task, (c) an FLV
live task; every file written is checked against the source (the live one too: one connection whose first
tag is at 0 is written byte for byte).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from bench.report import MiB, Row, Spread, cpu_seconds, table
from bench.target import DownloadServer, free_port

# (b)/(a) and (c)/(a) in server CPU: parsing every tag costs at most as much again as writing a plain file.
# (Wall time is shown too, but on a shared machine a sub-second run's wall time is mostly its neighbours'.)
FLV_TARGET = 2.0
GRACE = "0.2"


def make_media(workdir: Path, size_mib: int, clip_seconds: int = 10) -> Path:
    """An FLV of about `size_mib` MiB: ffmpeg's 10 s clip, its media tags repeated with rising timestamps."""
    clip = workdir / "clip.flv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-f", "lavfi",
         "-i", "sine=frequency=440:sample_rate=44100", "-t", str(clip_seconds), "-c:v", "libx264",
         "-preset", "ultrafast", "-g", "50", "-b:v", "4M", "-c:a", "aac", "-f", "flv", str(clip)],
        check=True, timeout=300,
    )  # fmt: skip
    data = clip.read_bytes()
    offset = int.from_bytes(data[5:9], "big") + 4
    head, tags, position = bytearray(data[:offset]), [], offset
    while position + 11 <= len(data):
        size = int.from_bytes(data[position + 1 : position + 4], "big")
        tags.append(data[position : position + 11 + size + 4])
        position += 11 + size + 4
    setup = [t for t in tags if t[0] == 18 or (t[12] == 0 and t[11] in (0x17, 0xAF))]
    media = [t for t in tags if t not in setup and not (t[0] == 9 and t[12] == 2)]  # no end-of-sequence
    out = bytearray(head + b"".join(setup))
    shift = 0
    while len(out) < size_mib * MiB:
        for tag in media:
            stamp = (int.from_bytes(tag[4:7], "big") | tag[7] << 24) + shift
            out += tag[:4] + (stamp & 0xFFFFFF).to_bytes(3, "big") + bytes((stamp >> 24,)) + tag[8:]
        shift += clip_seconds * 1000
    target = workdir / "big.flv"
    target.write_bytes(out)
    (workdir / "big.mp4").symlink_to(target)
    return target


def serve(folder: Path, port: int) -> None:
    """The origin process: /vod/<name> with Content-Length and Range, /live/<n>/<name> chunked once, then 404."""
    answered: set[str] = set()

    async def vod(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(folder / request.match_info["name"])

    async def live(request: web.Request) -> web.StreamResponse:
        if request.path in answered:
            return web.Response(status=404)
        answered.add(request.path)
        response = web.StreamResponse(headers={"Content-Type": "video/x-flv"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with (folder / request.match_info["name"]).open("rb") as handle:
            while block := handle.read(256 * 1024):
                await response.write(block)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/vod/{name}", vod)
    app.router.add_get("/live/{n}/{name}", live)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(MiB):
            digest.update(block)
    return digest.hexdigest()


def measure(size_mib: int, repeat: int, say: Callable[[str], None], *, clip_seconds: int = 10) -> list[Row]:
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is needed on PATH to make the FLV media")
    with tempfile.TemporaryDirectory(prefix="mediadl-flv-bench-") as tmp:
        workdir = Path(tmp)
        media = make_media(workdir, size_mib, clip_seconds)
        source, size = _sha(media), media.stat().st_size
        port = free_port()
        origin = subprocess.Popen([sys.executable, "-m", "bench.flv_recording", "--serve", str(workdir), str(port)])
        try:
            with DownloadServer(workdir / "server", env={"DOWNLOAD_LIVE_OUTAGE_SECONDS": GRACE}) as server:
                server.warm_up()
                times: dict[str, list[float]] = {"mp4": [], "vod": [], "live": []}
                cpu: dict[str, list[float]] = {"mp4": [], "vod": [], "live": []}
                for n in range(repeat):
                    urls = {"mp4": ("vod/big.mp4", "MP4"), "vod": ("vod/big.flv", "FLV"),
                            "live": (f"live/{n}/big.flv", "FLV")}  # fmt: skip
                    for name, (path, kind) in urls.items():
                        before = cpu_seconds(server.pid)
                        outcome = server.download(f"http://127.0.0.1:{port}/{path}", kind)
                        cpu[name].append(cpu_seconds(server.pid) - before)
                        video = server.video(outcome.task_id)
                        written = server.storage / video.file_path
                        same = _sha(written) == source if name != "live" else written.stat().st_size == size
                        if not same:
                            raise RuntimeError(f"{name}: the file written differs from the source")
                        times[name].append(outcome.seconds)
                        say(f"round {n + 1} {name}: {outcome.seconds:.2f} s, server CPU {cpu[name][-1]:.2f} s")
                        server.delete(outcome.task_id)
        finally:
            origin.terminate()
            origin.wait()
    return rows(times, cpu, size)


def rows(times: dict[str, list[float]], cpu: dict[str, list[float]], size: int) -> list[Row]:
    mib = size / MiB
    result = [
        Row(f"{mib:.0f} MiB as an MP4 task (baseline), MiB/s", Spread.of([mib / t for t in times["mp4"]]).show()),
        Row("baseline server CPU, MiB per CPU second", Spread.of([mib / c for c in cpu["mp4"]]).show()),
    ]
    for name, what in (("vod", "FLV VOD task"), ("live", f"FLV live task (+{GRACE} s grace)")):
        wall = Spread.of([t / b for t, b in zip(times[name], times["mp4"], strict=True)])
        spent = Spread.of([c / b for c, b in zip(cpu[name], cpu["mp4"], strict=True)])
        rate = Spread.of([mib / c for c in cpu[name]]).median
        result.append(Row(f"{what}: wall time / baseline", wall.show()))
        result.append(Row(f"{what}: server CPU / baseline ({rate:.0f} MiB per CPU second)", spent.show(),
                          f"<= {FLV_TARGET}", spent.median <= FLV_TARGET))  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve", nargs=2, metavar=("DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return
    print(table(measure(args.size_mib, args.repeat, lambda line: print(line, file=sys.stderr))))


if __name__ == "__main__":
    main()
