"""The bench origin: an aiohttp server in its own process on loopback, serving synthetic HLS and MP4.

    python -m bench.origin            # prints "port <n>", serves until SIGTERM/SIGINT

Routes: /hls/<count>/<size>/index.m3u8 and /hls/<count>/<size>/<index>.ts (a VOD playlist of `count`
segments of `size` bytes); /mp4/<size>.mp4 (a synthetic MP4 of `size` bytes, streamed, Range honoured, open or closed);
/live/<window>/index.m3u8 (a live window of `window` 1 s entries sliding by one each second) and its
/live/<window>/<sequence>.ts; /stats (requests and body bytes served so far, JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiohttp import web

from bench.synthetic import MiB, Mp4Layout, Pool, media_playlist

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
ROOT = Path(__file__).resolve().parent.parent


class SyntheticOrigin:
    def __init__(self) -> None:
        self._pools: dict[int, Pool] = {}
        self.requests = 0
        self.bytes_sent = 0
        self._live_start = time.monotonic()
        self._live_text: tuple[tuple[int, int], str] = ((0, -1), "")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/hls/{count:\\d+}/{size:\\d+}/index.m3u8", self.playlist)
        app.router.add_get("/hls/{count:\\d+}/{size:\\d+}/{index:\\d+}.ts", self.segment)
        app.router.add_get("/mp4/{size:\\d+}.mp4", self.mp4)
        app.router.add_get("/live/{window:\\d+}/index.m3u8", self.live_playlist)
        app.router.add_get("/live/{window:\\d+}/{sequence:\\d+}.ts", self.live_segment)
        app.router.add_get("/stats", self.stats)
        return app

    def pool(self, size: int) -> Pool:
        if size not in self._pools:
            self._pools[size] = Pool(size)
        return self._pools[size]

    async def playlist(self, request: web.Request) -> web.Response:
        self.requests += 1
        text = media_playlist(int(request.match_info["count"]))
        return web.Response(text=text, content_type="application/vnd.apple.mpegurl")

    async def segment(self, request: web.Request) -> web.Response:
        self.requests += 1
        count, size, index = (int(request.match_info[k]) for k in ("count", "size", "index"))
        if index >= count:
            raise web.HTTPNotFound()
        body = self.pool(size).segment(index)
        self.bytes_sent += len(body)
        return web.Response(body=body, content_type="video/mp2t")

    async def mp4(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        layout = Mp4Layout(int(request.match_info["size"]), self.pool(MiB).pattern())
        start, end, status = 0, layout.size - 1, 200
        headers = {"Accept-Ranges": "bytes", "Content-Type": "video/mp4"}
        match = _RANGE.fullmatch(request.headers.get("Range", ""))
        if match is not None:
            start, status = int(match.group(1)), 206
            end = min(end, int(match.group(2))) if match.group(2) else end
            if start >= layout.size or start > end:
                raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{layout.size}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{layout.size}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = left = end - start + 1
        await response.prepare(request)
        for piece in layout.chunks(start):  # a closed range (a piece of a ranged download) stops at its end
            await response.write(piece[:left])
            self.bytes_sent += min(left, len(piece))
            left -= len(piece)
            if left <= 0:
                break
        await response.write_eof()
        return response

    async def live_playlist(self, request: web.Request) -> web.Response:
        """A live window of `window` 1-second entries that slides by one every second (never ends)."""
        self.requests += 1
        window = int(request.match_info["window"])
        first = int(time.monotonic() - self._live_start)
        if self._live_text[0] != (window, first):
            lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
            for sequence in range(first, first + window):
                lines += ["#EXTINF:1.0,", f"{sequence}.ts"]
            self._live_text = ((window, first), "\n".join(lines) + "\n")
        return web.Response(text=self._live_text[1], content_type="application/vnd.apple.mpegurl")

    async def live_segment(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = self.pool(188).segment(int(request.match_info["sequence"]) % 64)  # one MPEG-TS packet's size
        self.bytes_sent += len(body)
        return web.Response(body=body, content_type="video/mp2t")

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": self.requests, "bytes_sent": self.bytes_sent})


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(SyntheticOrigin().app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(f"port {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


class OriginProcess:
    """Starts `python -m bench.origin` and stops it; `url(path)` addresses it."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> OriginProcess:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.origin", "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("port "):
            self._proc.kill()
            raise RuntimeError(f"the bench origin did not start (said {line!r})")
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def stats(self) -> dict[str, int]:
        import urllib.request

        with urllib.request.urlopen(self.url("stats"), timeout=10) as resp:
            data: dict[str, int] = json.load(resp)
        return data


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.origin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
