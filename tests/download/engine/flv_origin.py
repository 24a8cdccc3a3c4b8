"""HTTP-FLV test media and a live FLV origin the tests script connection by connection.

The media is made by ffmpeg (H.264 + AAC, 10 fps, a keyframe every second) and split into tags here with a
parser of its own (struct, not the engine's reader), so the engine's reader is checked, not reused.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.media import ffprobe

FPS = 10


def make_flv(target: Path, seconds: int) -> Path:
    """An FLV of `seconds` seconds made by ffmpeg (skips the test when ffmpeg is missing)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg not installed: the FLV tests make their media with it")
    subprocess.run(
        [
            ffmpeg, "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size=96x64:rate={FPS}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050",
            "-t", str(seconds),
            "-c:v", "libx264", "-preset", "ultrafast", "-g", str(FPS), "-keyint_min", str(FPS),
            "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "24k",
            "-f", "flv", str(target),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return target


@dataclass(frozen=True)
class RawTag:
    kind: int
    timestamp: int
    data: bytes

    @property
    def setup(self) -> bool:
        """Codec setup (AVC/AAC sequence header) or metadata, not media."""
        return self.kind == 18 or (len(self.data) > 1 and self.data[1] == 0 and self.data[0] in (0x17, 0xAF))

    @property
    def keyframe(self) -> bool:
        return self.kind == 9 and self.data[0] >> 4 == 1

    def encode(self, timestamp: int | None = None) -> bytes:
        stamp = self.timestamp if timestamp is None else timestamp
        head = struct.pack(">B3s3sB3s", self.kind, len(self.data).to_bytes(3, "big"),
                           (stamp & 0xFFFFFF).to_bytes(3, "big"), stamp >> 24, b"\0\0\0")  # fmt: skip
        return head + self.data + struct.pack(">I", 11 + len(self.data))


def split(data: bytes) -> tuple[bytes, list[RawTag]]:
    """(the header with PreviousTagSize0, the tags)."""
    offset = struct.unpack(">I", data[5:9])[0]
    header, position, tags = data[: offset + 4], offset + 4, []
    while position + 11 <= len(data):
        kind, size = data[position] & 0x1F, int.from_bytes(data[position + 1 : position + 4], "big")
        stamp = int.from_bytes(data[position + 4 : position + 7], "big") | data[position + 7] << 24
        tags.append(RawTag(kind, stamp, data[position + 11 : position + 11 + size]))
        position += 11 + size + 4
    return header, tags


@dataclass
class Connection:
    """One answer of the live origin: the media tags [start, stop), then how the connection ends."""

    start: int
    stop: int
    end: str = "eof"  # eof | drop (TCP reset mid-stream)
    shift: int = 0  # added to every timestamp (an origin whose clock restarted: minus the first one)
    hold: asyncio.Event | None = None  # sent the first half, then wait for this before the rest
    status: int = 200  # not 200: only that status, no body


@dataclass
class FlvOrigin:
    """Serves each path of `scripts` connection by connection (404 once its script runs out), `vod.flv` as a
    file with Range support, `page.flv` (an HTML error page with 200) and `fake.flv` (not FLV at all)."""

    media: Path
    scripts: dict[str, list[Connection]] = field(default_factory=dict)  # path -> its connections, in order
    requests: list[str] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self.header, tags = split(self.media.read_bytes())
        self.setup = [t for t in tags if t.setup]
        self.tags = [t for t in tags if not t.setup]
        self._all: list[list[Connection]] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def keyframes(self) -> list[int]:
        """Indexes (into `tags`) of the video keyframes: where a live origin starts a connection."""
        return [i for i, t in enumerate(self.tags) if t.keyframe]

    def video_between(self, start: int, stop: int) -> int:
        return sum(1 for t in self.tags[start:stop] if t.kind == 9 and t.data[1] == 1)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[FlvOrigin]:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        try:
            yield self
        finally:
            for connections in self._all:
                for connection in connections:
                    if connection.hold is not None:
                        connection.hold.set()
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        self.requests.append(path)
        if path == "vod.flv":
            return web.FileResponse(self.media, headers={"Content-Type": "video/x-flv"})
        if path == "page.flv":
            return web.Response(text="<html><body>room closed</body></html>", content_type="text/html")
        if path == "fake.flv":
            return web.Response(body=b"GIF89a" + bytes(64), content_type="application/octet-stream")
        script = self.scripts.get(path)
        if not script:
            return web.Response(status=404)
        self._all.append(list(script))
        connection = script.pop(0)
        if connection.status != 200:
            return web.Response(status=connection.status)
        return await self._stream(request, connection)

    async def _stream(self, request: web.Request, connection: Connection) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/x-flv"})
        response.enable_chunked_encoding()  # no Content-Length: a live stream
        await response.prepare(request)
        shift = connection.shift
        await response.write(self.header + b"".join(t.encode(max(0, t.timestamp + shift)) for t in self.setup))
        tags = self.tags[connection.start : connection.stop]
        half = len(tags) // 2 if connection.hold is not None else len(tags)
        await response.write(b"".join(t.encode(t.timestamp + shift) for t in tags[:half]))
        if connection.hold is not None:
            await connection.hold.wait()
            await response.write(b"".join(t.encode(t.timestamp + shift) for t in tags[half:]))
        if connection.end == "drop":
            await response.write(b"\x09\x00\x10")  # half a tag header, then the connection is gone
            _reset(request)
            return response
        await response.write_eof()
        return response


def _reset(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def packets(media: Path, stream: str) -> list[tuple[float, float]]:
    """(dts, pts) in seconds of every packet of the first `stream` ("v" or "a"), by ffprobe -show_packets."""
    out = ffprobe(media, "-select_streams", f"{stream}:0", "-show_entries", "packet=dts_time,pts_time",
                  "-of", "compact=p=0")  # fmt: skip
    rows = [dict(field.split("=", 1) for field in line.split("|")) for line in out.splitlines() if line]
    return [(float(row["dts_time"]), float(row["pts_time"])) for row in rows]


def setup_tags(media: Path) -> list[int]:
    """The kinds of every metadata and codec-setup tag in `media` (each should appear once)."""
    return [t.kind for t in split(media.read_bytes())[1] if t.setup]
