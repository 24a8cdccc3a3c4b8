"""A real local HTTP origin serving a copy of the media fixtures, with switchable misbehaviour per path.

    async with Origin.serving(media_fixtures, tmp_path) as origin:
        origin.fail("hls_ts/seg02.ts", status=404)          # every request, until heal()
        origin.reset("hls_ts/seg03.ts", times=2)            # the next two requests
        origin.chaos(prefix="hls_ts/seg", rate=0.4, seed=7)  # random 503 / reset / truncate / slow
        url = origin.url("hls_ts/index.m3u8")
        ...
        assert origin.requests["hls_ts/seg02.ts"] == 1

Faults queued for a path apply before chaos; each request consumes one. `requests` counts every request
per path; `completed` counts bodies served whole (what "fetched twice" means in tests); `served` the body
bytes written per path (what a resumed download asked for); `ended` counts requests that are over,
answered or dropped by the client (`wait_settled` waits for every one of a path).
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import socket
import struct
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

CHAOS_KINDS = ("503", "reset", "truncate", "slow")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass
class Fault:
    kind: str  # status | reset | truncate | stall | slow | trickle | ignore_range | redirect | gate | hold
    times: int | None = 1  # None: until healed
    status: int = 503
    delay: float = 0.0
    location: str = ""
    retry_after: str | None = None
    gate: asyncio.Event | None = None


@dataclass
class _Chaos:
    match: Callable[[str], bool]
    rate: float
    rng: random.Random
    kinds: tuple[str, ...]
    max_consecutive: int
    delay: float


class Origin:
    """An aiohttp server on 127.0.0.1, port chosen by the OS, serving files under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: Counter[str] = Counter()
        self.completed: Counter[str] = Counter()
        self.served: Counter[str] = Counter()  # body bytes written per path, whatever became of the request
        self.ended: Counter[str] = Counter()
        self.range_headers: dict[str, list[str | None]] = {}
        self.content_types: dict[str, str] = {}
        self.etags: dict[str, str] = {}  # sent as the path's ETag when set (a file that changes changes it)
        self._cuts: dict[str, set[int]] = {}
        self._faults: dict[str, list[Fault]] = {}
        self._sequences: dict[str, list[bytes]] = {}
        self._chaos: list[_Chaos] = []
        self._consecutive: Counter[str] = Counter()
        self._changed = asyncio.Condition()
        self._notifying: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @classmethod
    @asynccontextmanager
    async def serving(cls, fixtures: Path, tmp: Path) -> AsyncIterator[Origin]:
        """Copy `fixtures` into `tmp` (the originals stay read-only) and serve the copy."""
        root = tmp / "origin"
        shutil.copytree(fixtures, root)
        for path in root.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        origin = cls(root)
        await origin.start()
        try:
            yield origin
        finally:
            await origin.close()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for faults in self._faults.values():
            for fault in faults:
                if fault.gate is not None:
                    fault.gate.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    # Misbehaviour switches
    def add(self, path: str, fault: Fault) -> None:
        self._faults.setdefault(path, []).append(fault)

    def fail(self, path: str, *, status: int = 503, times: int | None = None, retry_after: str | None = None) -> None:
        self.add(path, Fault("status", times, status=status, retry_after=retry_after))

    def reset(self, path: str, *, times: int | None = 1) -> None:
        self.add(path, Fault("reset", times))

    def truncate(self, path: str, *, times: int | None = 1) -> None:
        self.add(path, Fault("truncate", times))

    def stall(self, path: str, *, delay: float, times: int | None = 1) -> None:
        """Send half the body, then go silent for `delay` seconds."""
        self.add(path, Fault("stall", times, delay=delay))

    def slow(self, path: str, *, delay: float, times: int | None = None) -> None:
        self.add(path, Fault("slow", times, delay=delay))

    def trickle(self, path: str, *, delay: float, times: int | None = 1) -> None:
        """Send the body one byte every `delay` seconds: never silent long enough for a read timeout."""
        self.add(path, Fault("trickle", times, delay=delay))

    def cut_range(self, path: str, start: int) -> None:
        """The next range request to `path` starting at `start` gets half its bytes, then the connection
        closes (in order, so the client holds exactly those bytes): a piece that fails mid-way."""
        self._cuts.setdefault(path, set()).add(start)

    def ignore_range(self, path: str, *, times: int | None = None) -> None:
        self.add(path, Fault("ignore_range", times))

    def redirect(self, path: str, location: str, *, status: int = 302, times: int | None = None) -> None:
        self.add(path, Fault("redirect", times, status=status, location=location))

    def gate(self, path: str) -> asyncio.Event:
        """Hold the next request to `path` until the returned event is set."""
        event = asyncio.Event()
        self.add(path, Fault("gate", 1, gate=event))
        return event

    def hold(self, path: str) -> asyncio.Event:
        """Send the first half of the next response to `path`, then wait for the returned event to send the rest."""
        event = asyncio.Event()
        self.add(path, Fault("hold", 1, gate=event))
        return event

    def chaos(
        self,
        *,
        prefix: str,
        rate: float,
        seed: int,
        kinds: tuple[str, ...] = CHAOS_KINDS,
        max_consecutive: int = 2,
        delay: float = 0.05,
    ) -> None:
        """Random faults on paths starting with `prefix`; never more than max_consecutive in a row per path."""
        self._chaos.append(
            _Chaos(lambda p: p.startswith(prefix), rate, random.Random(seed), kinds, max_consecutive, delay)
        )

    def heal(self, path: str | None = None) -> None:
        if path is None:
            self._faults.clear()
            self._chaos.clear()
        else:
            self._faults.pop(path, None)

    def sequence(self, path: str, bodies: list[bytes]) -> None:
        """Each request to `path` gets the next body; the last one repeats (a live playlist growing)."""
        self._sequences[path] = list(bodies)

    def write(self, path: str, data: bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    async def wait_requests(self, path: str, count: int) -> None:
        """Wait (no polling) until `path` has been requested at least `count` times."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.requests[path] >= count)

    async def wait_settled(self, path: str) -> None:
        """Wait until every request to `path` so far is over: answered whole, or dropped by the client (whose
        hang-up cancels the handler). Release the gates first, or a held request never ends."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.ended[path] >= self.requests[path])

    # Serving
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        self.requests[path] += 1
        self.range_headers.setdefault(path, []).append(request.headers.get("Range"))
        async with self._changed:
            self._changed.notify_all()
        try:
            return await self._respond(request, path)
        finally:
            self.ended[path] += 1
            self._changed_soon()

    def _changed_soon(self) -> None:
        # Called from a handler that may be cancelled (the client hung up): notify from a task of its own.
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        task = asyncio.get_running_loop().create_task(notify())
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    async def _respond(self, request: web.Request, path: str) -> web.StreamResponse:
        fault = self._next_fault(path)
        if fault is not None:
            handled = await self._misbehave(request, path, fault)
            if handled is not None:
                return handled
        return await self._serve(request, path, honour_range=fault is None or fault.kind != "ignore_range")

    def _next_fault(self, path: str) -> Fault | None:
        queue = self._faults.get(path)
        if queue:
            fault = queue[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    queue.pop(0)
            return fault
        for chaos in self._chaos:
            if chaos.match(path):
                if self._consecutive[path] < chaos.max_consecutive and chaos.rng.random() < chaos.rate:
                    self._consecutive[path] += 1
                    kind = chaos.rng.choice(chaos.kinds)
                    if kind == "503":
                        # Retry-After: 0, as a CDN edge in trouble sends it: "try again, at once if you like".
                        return Fault("status", status=503, retry_after="0")
                    return Fault(kind, delay=chaos.delay)
                self._consecutive[path] = 0
        return None

    async def _misbehave(self, request: web.Request, path: str, fault: Fault) -> web.StreamResponse | None:
        if fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return web.Response(status=fault.status, text=f"fault {fault.status}\n", headers=headers)
        if fault.kind == "redirect":
            return web.Response(status=fault.status, headers={"Location": fault.location})
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        elif fault.kind == "gate":
            assert fault.gate is not None
            await fault.gate.wait()
        elif fault.kind == "reset":
            _reset(request)
            raise asyncio.CancelledError  # nothing more to send on a dead connection
        elif fault.kind == "trickle":
            return await self._trickle(request, path, fault.delay)
        elif fault.kind == "hold":
            assert fault.gate is not None
            data = self._body(path)
            response = web.StreamResponse(headers={"Content-Type": self._content_type(path)})
            response.content_length = len(data)
            await response.prepare(request)
            await self._send(response, path, data[: len(data) // 2])
            await fault.gate.wait()
            await self._send(response, path, data[len(data) // 2 :])
            await response.write_eof()
            return response
        elif fault.kind in ("truncate", "stall"):
            data = self._body(path)
            response = web.StreamResponse(headers={"Content-Type": self._content_type(path)})
            response.content_length = len(data)
            await response.prepare(request)
            await self._send(response, path, data[: len(data) // 2])
            if fault.kind == "stall":
                await asyncio.sleep(fault.delay)
            _reset(request)
            raise asyncio.CancelledError
        return None

    async def _trickle(self, request: web.Request, path: str, delay: float) -> web.StreamResponse:
        data = self._body(path)
        response = web.StreamResponse(headers={"Content-Type": self._content_type(path)})
        response.content_length = len(data)
        await response.prepare(request)
        for i in range(len(data)):
            await self._send(response, path, data[i : i + 1])
            await asyncio.sleep(delay)
        await response.write_eof()
        return response

    async def _serve(self, request: web.Request, path: str, *, honour_range: bool) -> web.StreamResponse:
        if path in self._sequences:
            body = self._body(path)
            data: bytes | None = body
            size = len(body)
        else:
            file = (self.root / path).resolve()
            if not file.is_relative_to(self.root.resolve()) or not file.is_file():
                return web.Response(status=404, text="not found\n")
            data, size = None, file.stat().st_size
        headers = {"Content-Type": self._content_type(path), "Accept-Ranges": "bytes"}
        if path in self.etags:
            headers["ETag"] = self.etags[path]
        status, start, end = 200, 0, size - 1
        wanted = _RANGE.fullmatch(request.headers.get("Range", "").strip()) if honour_range else None
        if wanted is not None:
            first, last = wanted.groups()
            start, end = (size - int(last), size - 1) if not first else (int(first), min(size - 1, int(last or end)))
            if start >= size or start > end:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
            status, headers["Content-Range"] = 206, f"bytes {start}-{end}/{size}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = end - start + 1
        await response.prepare(request)
        if wanted is not None and start in self._cuts.get(path, set()):
            self._cuts[path].discard(start)
            await self._send(
                response, path, (data or (self.root / path).read_bytes())[start : start + (end - start + 1) // 2]
            )
            assert request.transport is not None
            request.transport.close()  # a FIN after the bytes written, not a reset that may drop them
            raise asyncio.CancelledError
        if data is not None:
            await self._send(response, path, data[start : end + 1])
        else:
            # Streamed in pieces so that big benchmark files cost constant memory.
            with (self.root / path).open("rb") as handle:
                handle.seek(start)
                remaining = end - start + 1
                while remaining > 0:
                    chunk = handle.read(min(256 * 1024, remaining))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                    await self._send(response, path, chunk)
        await response.write_eof()
        self.completed[path] += 1
        return response

    async def _send(self, response: web.StreamResponse, path: str, data: bytes) -> None:
        self.served[path] += len(data)
        await response.write(data)

    def _body(self, path: str) -> bytes:
        bodies = self._sequences.get(path)
        if bodies is not None:
            return bodies.pop(0) if len(bodies) > 1 else bodies[0]
        return (self.root / path).read_bytes()

    def _content_type(self, path: str) -> str:
        if path in self.content_types:
            return self.content_types[path]
        suffix = Path(path).suffix
        return {
            ".m3u8": "application/vnd.apple.mpegurl",
            ".ts": "video/mp2t",
            ".m4s": "video/iso.segment",
            ".mp4": "video/mp4",
            ".png": "image/png",
            ".jpg": "image/jpeg",
            ".bin": "application/octet-stream",
        }.get(suffix, "application/octet-stream")


def _reset(request: web.Request) -> None:
    """Close with a TCP RST (SO_LINGER 0), the way a crashed proxy or a dropped route looks to a client."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
