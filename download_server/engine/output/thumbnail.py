"""JPEG thumbnails with PyAV: a frame from about 10% into a video (or the image itself), scaled down.

The decoding runs in a short-lived process of its own (python -m download_server.engine.output.thumbnail,
as the live MP4 build does, engine/output/live_mux.py): PyAV and FFmpeg's decoders cost the server ~20 MiB
of RSS that it would keep for good after the first thumbnail (an MP4 or FLV recording, an image: nothing
else of theirs needs PyAV), and a decoder that crashes on a hostile file takes down the child, not the
server. A child starts in about 0.1 s; it is given the paths, never the bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from download_server.engine.output.remux import ChainedFile

# PyAV is imported inside the functions that use it (PLC0415 is not selected): only the child process does.

MAX_WIDTH = 640
SHARE = 0.10  # how far into the media the picture is taken: past a black first frame or a title card
_TIMEOUT = 120.0  # seconds: one frame of a huge or hostile file must not hold the end of a run for ever
_NO_PICTURE = 3  # the child's exit status when the media has no picture (any other failure: also none)


def make_thumbnail(media: Path | list[Path], target: Path, *, duration: float = 0.0) -> bool:
    """Blocking: write a JPEG of `media` (a video or image file, or the files of one HLS segment: its init
    section and itself) to `target`, `duration` * 10% in, in a child process; False when it has no picture
    (audio only, undecodable) or the child failed."""
    paths = [str(media)] if isinstance(media, Path) else [str(path) for path in media]
    request = json.dumps({"media": paths, "single": isinstance(media, Path), "target": str(target), "at": duration})
    command = [sys.executable, "-m", __name__, request]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


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


def main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    paths = [Path(path) for path in request["media"]]
    media: Path | list[Path] = paths[0] if request["single"] else paths
    made = thumbnail_here(media, Path(request["target"]), duration=float(request["at"]))
    return 0 if made else _NO_PICTURE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
