"""JPEG thumbnails with PyAV: a frame from about 10% into a video (or the image itself), scaled down.

The decoding runs in a helper process (python -m download_server.engine.output.thumbnail), as the live MP4
build does (engine/output/live_mux.py): PyAV and FFmpeg's libraries cost the server ~20 MiB of RSS that it
would keep for good after its first thumbnail (an MP4 or FLV recording, an image: nothing else of theirs
needs PyAV), and a decoder that crashes on a hostile file takes down the helper, not the server. The helper
is started at the first thumbnail and kept while more come (a new process per thumbnail would add ~75 ms,
mostly PyAV's import, to the end of every run); it exits after IDLE_SECONDS without a request, or when the
server goes away (its stdin closes). It is given paths, one JSON line per request, and answers one line.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

from download_server.engine.output.remux import ChainedFile

# PyAV is imported inside the functions that use it (PLC0415 is not selected): only the helper process does.

MAX_WIDTH = 640
SHARE = 0.10  # how far into the media the picture is taken: past a black first frame or a title card
IDLE_SECONDS = 30.0  # the helper exits after this long without a request (the next one starts another)
_TIMEOUT = 120.0  # seconds: one frame of a huge or hostile file must not hold the end of a run for ever


def make_thumbnail(media: Path | list[Path], target: Path, *, duration: float = 0.0) -> bool:
    """Blocking: write a JPEG of `media` (a video or image file, or the files of one HLS segment: its init
    section and itself) to `target`, `duration` * 10% in, in the helper process; False when it has no
    picture (audio only, undecodable) or the helper failed on it."""
    paths = [str(media)] if isinstance(media, Path) else [str(path) for path in media]
    request = json.dumps({"media": paths, "single": isinstance(media, Path), "target": str(target), "at": duration})
    return _HELPER.ask(request)


class _Helper:
    """The one helper process of this server; requests take turns (a thumbnail takes milliseconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def ask(self, request: str) -> bool:
        with self._lock:
            # A second try only for a helper that had just exited (idle) without reading the request.
            for _ in range(2):
                answer = self._exchange(request.encode() + b"\n")
                if answer is not None:
                    return answer == b"1"
            return False

    def _exchange(self, line: bytes) -> bytes | None:
        """The helper's answer; None when it had just left on its own (idle, exit code 0) without reading the
        request, the one case worth asking a new helper. A helper that crashed on this file, or hung past
        _TIMEOUT, answers b"0": asked again, it would crash or hang on the same file again."""
        process = self._running()
        stdin, stdout = _pipes(process)
        try:
            stdin.write(line)
            stdin.flush()
            ready, _, _ = select.select([stdout], [], [], _TIMEOUT)
            answer = stdout.readline() if ready else b""
        except OSError:
            answer = b""
        if not answer:
            self._stop(process)
            return None if process.returncode == 0 else b"0"
        return answer.strip()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            if self._process is not None:
                self._stop(self._process)
            command = [sys.executable, "-m", __name__, str(IDLE_SECONDS)]
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        return self._process

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.kill()  # stuck past the timeout on one file: a new helper serves the next request
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()
        if self._process is process:
            self._process = None


def _pipes(process: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    assert process.stdin is not None and process.stdout is not None  # made with PIPE for both
    return process.stdin, process.stdout


_HELPER = _Helper()


def thumbnail_here(media: Path | list[Path], target: Path, *, duration: float = 0.0) -> bool:
    """Blocking, in this process: what make_thumbnail's child does."""
    import av

    try:
        frame = _frame_at(media, duration * SHARE)
    except (av.FFmpegError, OSError, ValueError):
        return False
    if frame is None:
        return False
    data = _jpeg(frame)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(target.name + ".part")
    temp.write_bytes(data)
    os.replace(temp, target)
    return True


def _frame_at(media: Path | list[Path], seconds: float) -> Any:
    import av

    with av.open(str(media) if isinstance(media, Path) else ChainedFile(media), "r") as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        if seconds > 0:
            try:
                container.seek(int(seconds * av.time_base), any_frame=False, backward=True)
            except av.FFmpegError:
                container.seek(0)
        wanted = Fraction(seconds)
        last = None
        for frame in container.decode(stream):
            last = frame
            if frame.time is None or frame.time >= wanted:
                return frame
        return last


def _jpeg(frame: Any) -> bytes:
    import av

    width, height = frame.width, frame.height
    if width > MAX_WIDTH:
        width, height = MAX_WIDTH, max(2, round(height * MAX_WIDTH / width))
    width, height = width - width % 2, height - height % 2  # 4:2:0 needs even sizes
    scaled = frame.reformat(width=width, height=height, format="yuvj420p")
    encoder: Any = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    packets = [*encoder.encode(scaled), *encoder.encode(None)]
    return b"".join(bytes(p) for p in packets)


def serve(idle: float) -> None:
    """The helper: one JSON request a line on stdin, "1" (made) or "0" a line on stdout, until stdin closes
    or nothing comes for `idle` seconds."""
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    while select.select([requests], [], [], idle)[0]:
        line = requests.readline()
        if not line:
            return  # the server went away
        try:
            request = json.loads(line)
            paths = [Path(path) for path in request["media"]]
            media: Path | list[Path] = paths[0] if request["single"] else paths
            made = thumbnail_here(media, Path(request["target"]), duration=float(request["at"]))
        except (ValueError, KeyError, TypeError, OSError):
            made = False
        answers.write(b"1\n" if made else b"0\n")
        answers.flush()


if __name__ == "__main__":
    serve(float(sys.argv[1]) if len(sys.argv) > 1 else IDLE_SECONDS)
