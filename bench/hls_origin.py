"""The HLS bench's origin: the synthetic stream as files served by nginx, or by bench/origin.py as a fallback.

Both serve the same paths (/hls/<count>/<size>/index.m3u8 and <index>.ts) with the same bytes, so the
contenders and their checks do not care which one answers. nginx is the one to quote: C and sendfile,
it leaves the CPU to the downloaders, where the aiohttp origin takes a core's worth from them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.nginx import NginxOptions, NginxOrigin, NginxUnavailable
from bench.origin import OriginProcess
from bench.synthetic import Pool, media_playlist


@dataclass(frozen=True)
class ServedStream:
    url: Callable[[str], str]  # a path on the origin -> its URL
    note: str  # which origin, for the table


def write_stream(root: Path, count: int, size: int) -> None:
    """The stream as files: root/hls/<count>/<size>/index.m3u8 and its <index>.ts segments."""
    folder = root / "hls" / str(count) / str(size)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.m3u8").write_text(media_playlist(count))
    pool = Pool(size)
    for index in range(count):
        (folder / f"{index}.ts").write_bytes(pool.segment(index))


@contextlib.contextmanager
def serve_stream(kind: str, root: Path, count: int, size: int, say: Callable[[str], None]) -> Iterator[ServedStream]:
    """Serve `count` segments of `size` bytes with nginx (`kind` "nginx", falling back to the aiohttp
    origin when nginx cannot be had) or with the aiohttp origin (`kind` "aiohttp")."""
    why = "chosen with --origin aiohttp"
    if kind == "nginx":
        write_stream(root, count, size)
        try:
            with NginxOrigin(NginxOptions(root, access_log=False)) as nginx:
                yield ServedStream(nginx.url, "nginx (files, sendfile)")
                return
        except NginxUnavailable as exc:
            why = f"nginx unavailable: {exc}"
            say(f"falling back to the aiohttp origin ({why})")
    with OriginProcess() as origin:
        note = f"the aiohttp origin, bench/origin.py ({why}; it takes CPU from the downloaders)"
        yield ServedStream(origin.url, note)
