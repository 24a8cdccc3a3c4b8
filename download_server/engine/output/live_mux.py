"""LiveMux: an HLS recording's MP4 built while its segments download, so only the tail is left at the end.

Segments finish out of order (several workers); the builder takes the contiguous prefix of finished ones in
play order (the planned order, fed by the job) and hands it to one PyAV demux -> mux pipeline in a process
of its own (python -m download_server.engine.output.live_mux: one Python step per packet would otherwise
take the GIL from the event loop that runs the download). A run of segments (no discontinuity, one init
section) is read as one file whose reads wait for the next segment: the bytes the whole remux of
engine/output/remux.py reads. When the download ends, only the last segments and the trailer remain.

The MP4 is fragmented (moov first, then moof+mdat per keyframe): its header is written before any media,
so the index is ahead of the media without rewriting the file at the end (faststart copies the whole
file once more). It is written under a temporary name and renamed (through the run's lease fence) only
when it holds exactly the run's finished segments; otherwise (a gap a failed segment left, a resumed run,
a paused or crashed one) the temporary file is dropped and the whole remux builds the MP4 from the
segments as before.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import select
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from download_server.engine.fence import DiskRunner
from download_server.engine.output.remux import Output, copy_source, first_dts

# PyAV is imported inside the functions that use it (PLC0415 is not selected): it costs ~16 MiB of RSS,
# which an idle server, or one that only downloads, need not carry; the end of a run imports it once.

# Fragmented MP4: moov first, a fragment per keyframe, each fragment's offsets from its own moof. The moov
# waits for the first fragment (delay_moov, not empty_moov): the AAC configuration is known only once the
# first audio packet went through aac_adtstoasc, and a moov without it leaves the audio undecodable.
FRAGMENTED = {"movflags": "delay_moov+default_base_moof+frag_keyframe"}
# Finished segments waiting behind one that is not: past this, the incremental build gives up (a segment
# failed for good early in a long live recording) rather than hold every later segment's entry.
MAX_WAITING = 20_000
_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class Piece:
    """One finished segment as the builder needs it (the job's hook says so; nothing is read from the ledger)."""

    index: int
    path: Path
    init: Path | None
    discontinuity: bool


def building_path(target: Path) -> Path:
    """The incremental build's temporary name beside the MP4 (a crash leaves this, never a broken MP4)."""
    return target.with_name(target.name + ".building")


class LiveMux:
    """Owned by one run of one HLS task with OUTPUT_FORMAT_MP4. planned()/finished() are called on the event
    loop (cheap: a few dict operations and, when the prefix grows, a line to the builder process)."""

    def __init__(self, target: Path, writer: DiskRunner, options: dict[str, str] | None = None) -> None:
        self.target = target
        self.temp = building_path(target)
        self._writer = writer  # the run's fenced writer: the final rename happens only while the lease holds
        self._options = options or FRAGMENTED
        self._planned: deque[int] = deque()
        self._waiting: dict[int, Piece] = {}  # finished, behind the cursor's gap
        self._accepted: list[int] = []  # every index handed to the pipeline, in order
        self._closed = False
        self.aborted = ""  # why the incremental build was given up ("" while it holds)
        self.error: str = ""
        self._worker: subprocess.Popen[bytes] | None = None

    # Event-loop side
    def planned(self, indexes: Iterable[int]) -> None:
        """New segments of the plan, in play order (a live poll appends)."""
        self._planned.extend(indexes)
        self._advance()

    def finished(self, piece: Piece) -> None:
        """A segment is whole on disk (decrypted): it joins the pipeline once every segment before it has."""
        if self.aborted or self._closed:
            return
        self._waiting[piece.index] = piece
        self._advance()
        if len(self._waiting) > MAX_WAITING:
            self._give_up(f"more than {MAX_WAITING} segments wait behind a missing one")

    def _advance(self) -> None:
        while not self.aborted and self._planned and self._planned[0] in self._waiting:
            piece = self._waiting.pop(self._planned.popleft())
            self._accepted.append(piece.index)
            self._send(piece)

    def _send(self, piece: Piece) -> None:
        """One line to the builder process, started with the first piece. Its reader thread drains the pipe
        at once, so this write never waits for the muxing."""
        try:
            if self._worker is None:
                # The muxing is one Python step per packet: in this process it would take the GIL from the
                # event loop that runs the download; a process of its own runs on another core.
                command = [sys.executable, "-m", __name__, str(self.temp), json.dumps(self._options)]
                self._worker = subprocess.Popen(command, stdin=subprocess.PIPE, bufsize=0)
                assert self._worker.stdin is not None
                # Never block the event loop: a full pipe means a stuck builder (its reader drains at once).
                os.set_blocking(self._worker.stdin.fileno(), False)
            assert self._worker.stdin is not None
            line = {"index": piece.index, "path": str(piece.path), "discontinuity": piece.discontinuity}
            line["init"] = str(piece.init) if piece.init else ""
            data = json.dumps(line).encode() + b"\n"
            if len(data) > select.PIPE_BUF or os.write(self._worker.stdin.fileno(), data) != len(data):
                self._give_up("a line to the builder process could not be written whole")
        except OSError as exc:  # gone (its error is on stderr) or stuck: the whole remux takes over
            self._give_up(f"the builder process does not take more ({exc})")

    def _give_up(self, why: str) -> None:
        if not self.aborted:
            self.aborted = why
            self._waiting.clear()

    def close(self, expected: Sequence[int] | None) -> bool:
        """Blocking. End the build: with `expected` matching what the pipeline got, wait for the tail and
        the trailer and return True (the temporary file is whole); otherwise stop it, drop the temporary
        file and return False. Safe to call more than once."""
        if expected is None or self._accepted != list(expected):
            self._give_up("the run ended without the MP4" if expected is None else "its segments are not the run's")
        worker, self._worker = self._worker, None
        self._closed = True
        if worker is None:
            return False
        assert worker.stdin is not None
        try:
            if not self.aborted:
                os.set_blocking(worker.stdin.fileno(), True)
                worker.stdin.write(b"end\n")  # without it, the builder stops and removes its file
            worker.stdin.close()
        except OSError as exc:
            self._give_up(f"the builder process is gone ({exc})")
        code = worker.wait()
        if code != 0 and not self.aborted:
            self.error = f"the builder process ended with status {code} (see the server log)"
        if self.aborted or self.error:
            self.temp.unlink(missing_ok=True)
            return False
        return True

    async def finish(self, expected: Sequence[int], target: Path) -> bool:
        """The run ended with `expected` finished (in play order): True once the MP4 is at `target`, built
        incrementally; False (nothing left behind) when the whole remux has to build it."""
        if target != self.target or not await asyncio.to_thread(self.close, expected):
            await self.abandon()
            return False
        await self._writer.run(lambda: os.replace(self.temp, target))  # LeaseLost past the lease: no rename
        return True

    async def abandon(self) -> None:
        """The run ended without the MP4 (paused, cancelled, failed, crashed, or the lease lost): the build
        stops and its temporary file goes; a later run builds the MP4 from the segments."""
        await asyncio.to_thread(self.close, None)


class _Pipeline:
    """The builder process's side: pieces arrive from stdin (a reader thread), the muxing runs in the main
    thread and waits for them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ready: deque[Piece] = deque()
        self._ended = False  # "end": every piece came
        self.aborted = False  # stdin closed without "end"

    def feed(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            if line.strip() == b"end":
                with self._cond:
                    self._ended = True
                    self._cond.notify_all()
                return
            data = json.loads(line)
            piece = Piece(data["index"], Path(data["path"]), Path(data["init"]) if data["init"] else None,
                          data["discontinuity"])  # fmt: skip
            with self._cond:
                self._ready.append(piece)
                self._cond.notify_all()
        with self._cond:
            self.aborted = True
            self._cond.notify_all()

    def _take(self, run_of: Piece | None) -> Piece | None:
        """The next piece, waiting for it: None at the end of the build, or (with `run_of`, the run's last
        piece) when the next piece starts another run (it stays for the next one)."""
        with self._cond:
            while not self._ready and not self._ended and not self.aborted:
                self._cond.wait()
            if self.aborted or not self._ready:
                return None
            piece = self._ready[0]
            if run_of is not None and _breaks(run_of, piece):
                return None
            return self._ready.popleft()

    def build(self, temp: Path, options: dict[str, str]) -> None:
        import av

        temp.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(temp), "w", format="mp4", options=options) as container:
            out = Output(container, fragmented="frag_keyframe" in options.get("movflags", ""))
            while (first := self._take(None)) is not None:
                parts = [first.init, first.path] if first.init else [first.path]
                firsts = first_dts(parts)
                reader = _RunReader(first, self._take)
                if firsts:
                    copy_source(reader, firsts, out)
                else:  # no packets (the whole remux skips such a run): its pieces are taken all the same
                    while reader.read(_BLOCK):
                        pass
        if out.packets == 0 and not self.aborted:
            raise ValueError("no audio or video packets to write")


def _main(temp: Path, options: dict[str, str]) -> int:
    pipeline = _Pipeline()
    threading.Thread(target=pipeline.feed, args=(sys.stdin.buffer,), daemon=True).start()
    try:
        pipeline.build(temp, options)
    except Exception as exc:
        print(f"incremental MP4 build of {temp} failed: {exc}", file=sys.stderr)
        temp.unlink(missing_ok=True)
        return 1
    if pipeline.aborted:
        temp.unlink(missing_ok=True)
        return 2
    return 0


def _breaks(previous: Piece, piece: Piece) -> bool:
    """As the whole remux groups runs: a discontinuity, a missing index, or another init section."""
    return piece.discontinuity or piece.index != previous.index + 1 or piece.init != previous.init


class _RunReader(io.RawIOBase):
    """One run's init section and segments as one file; a read past the last segment written so far waits
    for the next (EOF when the run or the build ends)."""

    def __init__(self, first: Piece, take: Callable[[Piece | None], Piece | None]) -> None:
        self._take = take
        self._last = first
        self._paths = [first.init, first.path] if first.init else [first.path]
        self._handle: Any = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while True:
            if self._handle is None:
                if not self._paths:
                    following = self._take(self._last)
                    if following is None:
                        return 0
                    self._last = following
                    self._paths.append(following.path)
                # Unbuffered: FFmpeg asks for large blocks, read straight into its buffer (no second copy).
                self._handle = self._paths.pop(0).open("rb", buffering=0)
            count = self._handle.readinto(view)
            if count:
                return int(count)
            self._handle.close()
            self._handle = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        super().close()


def building_of(job: object) -> LiveMux | None:
    """The incremental MP4 build a job runs, if any (HLS jobs with OUTPUT_FORMAT_MP4 on a fresh plan)."""
    found = getattr(job, "building", None)
    return found if isinstance(found, LiveMux) else None


if __name__ == "__main__":
    sys.exit(_main(Path(sys.argv[1]), json.loads(sys.argv[2])))
