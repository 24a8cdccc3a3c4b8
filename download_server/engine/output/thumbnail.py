"""JPEG thumbnails with PyAV: a frame from about 10% into a video (or the image itself), scaled down."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from download_server.engine.output.remux import ChainedFile

MAX_WIDTH = 640
SHARE = 0.10  # how far into the media the picture is taken: past a black first frame or a title card


def make_thumbnail(media: Path | list[Path], target: Path, *, duration: float = 0.0) -> bool:
    """Blocking: write a JPEG of `media` (a video or image file, or the files of one HLS segment: its init
    section and itself) to `target`, `duration` * 10% in; False when it has no picture (audio only,
    undecodable)."""
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
