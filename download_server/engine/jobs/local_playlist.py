"""The local index.m3u8: the segments on disk, gaps marked as discontinuities, playable offline."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from download_server.domain.models import Segment, SegmentStatus


def segment_extension(segment: Segment) -> str:
    """fMP4 media (it has an init section) is saved as .m4s, MPEG-TS as .ts."""
    return "m4s" if segment.init_uri else "ts"


def init_ordinals(segments: Iterable[Segment]) -> dict[str, int]:
    """Number each distinct init section by first use in index order (stable as a live stream grows)."""
    ordinals: dict[str, int] = {}
    for segment in sorted(segments, key=lambda s: s.index):
        if segment.init_uri and segment.init_uri not in ordinals:
            ordinals[segment.init_uri] = len(ordinals)
    return ordinals


def render(segments: Sequence[Segment], *, ended: bool, comment: str = "") -> str:
    """The playlist text. Saved segments are decrypted and cut to their byte range, so neither
    EXT-X-KEY nor EXT-X-BYTERANGE appears; a missing segment becomes an EXT-X-DISCONTINUITY."""
    ordered = sorted(segments, key=lambda s: s.index)
    ordinals = init_ordinals(ordered)
    present = [s for s in ordered if s.status is SegmentStatus.DONE]
    target = max((s.duration for s in present), default=1.0)
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{7 if ordinals else 3}",
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(target))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if ended else 'EVENT'}",
    ]
    if comment:
        lines.append(f"## {comment}")  # "##" is a plain comment to players
    previous: Segment | None = None
    for segment in present:
        if previous is not None and (segment.discontinuity or segment.index != previous.index + 1):
            lines.append("#EXT-X-DISCONTINUITY")
        if segment.init_uri and (previous is None or previous.init_uri != segment.init_uri):
            lines.append(f'#EXT-X-MAP:URI="init_{ordinals[segment.init_uri]}.mp4"')
        lines.append(f"#EXTINF:{segment.duration:.6f},")
        lines.append(f"ts/{segment.index}.{segment_extension(segment)}")
        previous = segment
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Blocking: write `text` beside `path` and rename it over, so a reader never sees half a playlist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".part")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
