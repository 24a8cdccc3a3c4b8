"""LiveMux: an HLS recording's MP4 built while its segments download, so only the tail is left at the end.

Segments finish out of order (several workers); the builder takes the contiguous prefix of finished ones in
play order (the planned order, fed by the job) and hands it to one PyAV demux -> mux pipeline in a process
of its own (engine/output/mux_worker.py, started with the first plan: one Python step per packet would
otherwise take the GIL from the event loop that runs the download). A run of segments (no discontinuity, one init
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
import json
import os
import select
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path

from download_server.engine.fence import DiskRunner
from download_server.engine.output import mux_worker
from download_server.engine.output.mux_worker import Piece

__all__ = ["FRAGMENTED", "MAX_WAITING", "LiveMux", "Piece", "building_of", "building_path"]

# PyAV is imported inside the functions that use it (PLC0415 is not selected): it costs ~16 MiB of RSS,
# which an idle server, or one that only downloads, need not carry; the end of a run imports it once.

# Fragmented MP4: moov first, a fragment per keyframe, each fragment's offsets from its own moof. The moov
# waits for the first fragment (delay_moov, not empty_moov): the AAC configuration is known only once the
# first audio packet went through aac_adtstoasc, and a moov without it leaves the audio undecodable.
FRAGMENTED = {"movflags": "delay_moov+default_base_moof+frag_keyframe"}
# Finished segments waiting behind one that is not: past this, the incremental build gives up (a segment
# failed for good early in a long live recording) rather than hold every later segment's entry.
MAX_WAITING = 20_000


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
        """New segments of the plan, in play order (a live poll appends). The first plan starts the builder
        process: its start (an interpreter, PyAV) then overlaps the first segments' download."""
        self._planned.extend(indexes)
        if self._worker is None and self._planned and not self.aborted and not self._closed:
            self._start()
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
        while not self.aborted and not self._closed and self._planned and self._planned[0] in self._waiting:
            piece = self._waiting.pop(self._planned.popleft())
            self._accepted.append(piece.index)
            self._send(piece)

    def _start(self) -> None:
        try:
            # The muxing is one Python step per packet: in this process it would take the GIL from the event
            # loop that runs the download; a process of its own runs on another core.
            command = [sys.executable, "-m", mux_worker.__name__, str(self.temp), json.dumps(self._options)]
            self._worker = subprocess.Popen(command, stdin=subprocess.PIPE, bufsize=0)
            assert self._worker.stdin is not None
            # Never block the event loop: a full pipe means a stuck builder (its reader drains at once).
            os.set_blocking(self._worker.stdin.fileno(), False)
        except OSError as exc:
            self._give_up(f"the builder process could not be started ({exc})")

    def _send(self, piece: Piece) -> None:
        """One line to the builder process. Its reader thread drains the pipe at once, so this write never
        waits for the muxing."""
        if self._worker is None:
            self._start()
        if self._worker is None or self._worker.stdin is None:
            return
        try:
            data = piece.line()
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


def building_of(job: object) -> LiveMux | None:
    """The incremental MP4 build a job runs, if any (HLS jobs with OUTPUT_FORMAT_MP4 on a fresh plan)."""
    found = getattr(job, "building", None)
    return found if isinstance(found, LiveMux) else None
