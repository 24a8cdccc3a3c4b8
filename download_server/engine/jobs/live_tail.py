"""A live playlist's new entries only: each poll parses what was added since the last one, not the whole window."""

from __future__ import annotations

import marshal
import re
from collections.abc import Iterator
from dataclasses import replace

from download_server.engine.jobs import hls_playlist
from download_server.engine.jobs.hls_playlist import MediaPlaylist, RemoteSegment

_SEQUENCE = re.compile(r"#EXT-X-MEDIA-SEQUENCE:[ \t]*(\d+)")
_TARGET = re.compile(r"#EXT-X-TARGETDURATION:[ \t]*(\d+(?:\.\d+)?)")
_ENTRY = "#EXTINF"
CHUNK = 2000  # entries per parse of a long playlist


def parse_since(text: str, url: str, after: int) -> MediaPlaylist | None:
    """The playlist with only its segments after media sequence `after` (parsed alone: a 100k-entry window
    sliding by one costs one entry, plus C-speed scans of the text); None when only a whole parse is right
    (the sequence went back: a reset; everything is new; an implicit byte-range offset crosses the cut)."""
    head_end = text.find(_ENTRY)
    if head_end < 0:
        return None
    header = text[:head_end]
    found = _SEQUENCE.search(header)
    first = int(found.group(1)) if found else 0
    count = text.count(_ENTRY)
    last = first + count - 1
    fresh = last - after
    if fresh < 0 or fresh >= count:
        return None
    if fresh == 0:
        target = _TARGET.search(header)
        duration = float(target.group(1)) if target else 0.0
        return MediaPlaylist(url, duration, "#EXT-X-ENDLIST" in text, [], listed_from=first)
    cut = _cut_before(text, fresh)
    tail = text[cut:]
    if "#EXT-X-BYTERANGE" in tail and not _explicit_ranges(tail):
        return None
    # The key and init section in force where the tail starts (tags apply until the next of their kind).
    carried = [line for line in (_last_line(text, "#EXT-X-KEY", cut), _last_line(text, "#EXT-X-MAP", cut)) if line]
    numbered = _SEQUENCE.sub(f"#EXT-X-MEDIA-SEQUENCE:{last - fresh + 1}", header) if found else header
    if not found:
        numbered += f"#EXT-X-MEDIA-SEQUENCE:{last - fresh + 1}\n"
    parsed = hls_playlist.parse_media("\n".join([numbered.rstrip("\n"), *carried, tail]), url)
    return replace(parsed, listed_from=first)


def parse_chunked(text: str, url: str, chunk: int = 0) -> MediaPlaylist:
    """The whole media playlist, parsed `chunk` entries at a time: the same segments as one parse, but the
    parser's own objects for a 100k-entry window never exist all at once (their peak, not the segments,
    is what a long live window cost in memory). Falls back to one parse where a cut is not safe."""
    parts = list(_parts(text, url, chunk or CHUNK))
    if len(parts) == 1:
        return parts[0]
    segments = [segment for part in parts for segment in part.segments]
    return MediaPlaylist(url, parts[-1].target_duration, "#EXT-X-ENDLIST" in text, segments)


def parse_packed(text: str, url: str, chunk: int = 0) -> MediaPlaylist:
    """parse_chunked's playlist for a first plan: every entry parsed (a bad one fails the load, as before),
    but past the first chunk the entries are kept packed, one buffer per chunk, until `take_slices` hands
    them out. Parsed entries are small objects: 100k of them filled ~80 MiB of pymalloc arenas, which the
    few objects born beside them during the catch-up kept for the life of the process (issue 15); a buffer
    is one big block that goes back to the C allocator whole."""
    chunk = chunk or CHUNK  # (read at call time: tests make it small)
    packed: list[bytes] = []
    head: list[RemoteSegment] | None = None
    last: MediaPlaylist | None = None
    for part in _parts(text, url, chunk):
        if head is None and len(part.segments) <= chunk:
            head = part.segments
        else:
            entries = part.segments
            packed.extend(pack(entries[start : start + chunk]) for start in range(0, len(entries), chunk))
        last = part
    assert last is not None  # _parts yields at least one part
    if not packed:
        return last  # short enough to stay parsed
    segments = head or []
    first = segments[0].sequence if segments else unpack(packed[0])[0].sequence
    endlist = "#EXT-X-ENDLIST" in text
    return MediaPlaylist(url, last.target_duration, endlist, segments, listed_from=first, packed=packed)


def take_slices(source: MediaPlaylist, size: int) -> Iterator[list[RemoteSegment]]:
    """The playlist's entries `size` at a time, in order; the playlist lets go of each slice as it is
    handed out (its list shortened, its packed chunks unpacked one at a time)."""
    remote = source.segments
    while remote:
        part = remote[:size]
        del remote[:size]
        yield part
    packed = source.packed
    while packed:
        entries = unpack(packed.pop(0))
        for start in range(0, len(entries), size):
            yield entries[start : start + size]


def pack(segments: list[RemoteSegment]) -> bytes:
    """Parsed entries as one buffer (marshal: our own plain values, read back only by `unpack`)."""
    return marshal.dumps(
        [
            (s.sequence, s.uri, s.duration, s.byterange, s.key_uri, s.key_iv, s.init_uri, s.discontinuity)
            for s in segments
        ]
    )


def unpack(blob: bytes) -> list[RemoteSegment]:
    return [RemoteSegment(*fields) for fields in marshal.loads(blob)]


def _parts(text: str, url: str, chunk: int) -> Iterator[MediaPlaylist]:
    """The media playlist parsed `chunk` entries at a time (one parse where a cut is not safe)."""
    count = text.count(_ENTRY)
    head_end = text.find(_ENTRY)
    if count <= chunk or head_end < 0 or ("#EXT-X-BYTERANGE" in text and not _explicit_ranges(text)):
        yield hls_playlist.parse_media(text, url)
        return
    header = text[:head_end]
    found = _SEQUENCE.search(header)
    first = int(found.group(1)) if found else 0
    cuts = [_cut_before(text, fresh) for fresh in range(count, 0, -chunk)]
    for number, cut in enumerate(cuts):
        end = cuts[number + 1] if number + 1 < len(cuts) else len(text)
        carried = [line for line in (_last_line(text, "#EXT-X-KEY", cut), _last_line(text, "#EXT-X-MAP", cut)) if line]
        sequence = first + number * chunk
        numbered = _SEQUENCE.sub(f"#EXT-X-MEDIA-SEQUENCE:{sequence}", header) if found else header
        if not found:
            numbered += f"#EXT-X-MEDIA-SEQUENCE:{sequence}\n"
        body = text[cut:end] if number else text[head_end:end]
        yield hls_playlist.parse_media("\n".join([numbered.rstrip("\n"), *carried, body]), url)


def _cut_before(text: str, fresh: int) -> int:
    """Where the last `fresh` entries begin, including the tags in front of the first one (a discontinuity,
    a new key) but not the previous entry's URI line."""
    position = len(text)
    for _ in range(fresh):
        position = text.rfind(_ENTRY, 0, position)
    cut = text.rfind("\n", 0, position) + 1
    while cut > 0:
        start = text.rfind("\n", 0, cut - 1) + 1
        line = text[start:cut].strip()
        if line and not line.startswith("#"):
            break  # the previous entry's URI
        cut = start
    return cut


def _last_line(text: str, tag: str, before: int) -> str:
    start = text.rfind(tag, 0, before)
    if start < 0:
        return ""
    end = text.find("\n", start)
    return text[start : end if end >= 0 else len(text)].strip()


def _explicit_ranges(tail: str) -> bool:
    return all("@" in line for line in tail.splitlines() if line.startswith("#EXT-X-BYTERANGE"))
