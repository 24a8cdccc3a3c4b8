"""Reading remote HLS playlists (via the m3u8 package) into plain facts: variants, segments, keys, init sections."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

import m3u8

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.jobs.crypto import iv_for_sequence, parse_iv

# EXT-X-MAP may carry a BYTERANGE. The Segment row has room for the init URI only, so the range rides in a
# URL fragment: fragments never reach the origin, and the row stays self-contained for resume and retry.
_INIT_RANGE = re.compile(r"#mediadl-range=(\d+)@(\d+)$")
# Segments (or variants) one playlist may list. The byte cap alone admits ~450k short entries, which
# the m3u8 parser turns into ~40 s of CPU and ~650 MiB (measured); 100k is a day of 1 s segments.
MAX_ENTRIES = 100_000
# Every number a playlist gives is checked before it reaches arithmetic, a database column or a sleep:
# `#EXTINF:inf,` once wedged a task (math.ceil(inf) raised in a loop). A day is beyond any real segment.
MAX_SECONDS = 86_400.0
MAX_SEQUENCE = 2**63 - 1  # RFC 8216 allows 2^64-1; the rows and the IV arithmetic take signed 64 bits
MAX_BYTES = 2**50  # a byte range past a petabyte is a lie


@dataclass(frozen=True)
class Variant:
    url: str
    bandwidth: int
    count: int  # how many variants the master offered


@dataclass(frozen=True)
class RemoteSegment:
    sequence: int
    uri: str
    duration: float
    byterange: tuple[int, int] | None  # (offset, length)
    key_uri: str | None
    key_iv: str | None  # 32 hex digits
    init_uri: str | None
    discontinuity: bool

    @property
    def identity(self) -> tuple[str, int | None, int | None]:
        """What names the same piece of media across refreshes of a live playlist."""
        offset, length = self.byterange if self.byterange else (None, None)
        return self.uri, offset, length


@dataclass(frozen=True)
class MediaPlaylist:
    url: str
    target_duration: float
    endlist: bool
    segments: list[RemoteSegment]
    # The first media sequence the playlist lists, when `segments` holds only its new entries (a live poll).
    listed_from: int | None = None
    # A long first plan's entries after `segments`, packed a chunk at a time (live_tail.parse_packed): a
    # 100k-entry window as ~50 buffers, not ~800k small objects whose arenas outlive them (issue 15).
    packed: list[bytes] = field(default_factory=list)


def decode(body: bytes) -> str:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FetchError(ErrorType.PLAYLIST, "the playlist is not UTF-8 text") from None
    if not text.lstrip().startswith("#EXTM3U"):
        raise FetchError(ErrorType.PLAYLIST, "not an HLS playlist (no #EXTM3U header)")
    # Counted before parsing (a C-speed scan), so an oversized plan costs nothing but this check.
    entries = text.count("#EXTINF") + text.count("#EXT-X-STREAM-INF")
    if entries > MAX_ENTRIES:
        raise FetchError(ErrorType.TOO_LARGE, f"the playlist lists {entries} entries, over the {MAX_ENTRIES} limit")
    return text


def pick_variant(text: str, url: str) -> Variant | None:
    """The highest-BANDWIDTH variant of a master playlist, or None if `text` is a media playlist."""
    if "#EXT-X-STREAM-INF" not in text:
        # m3u8 calls a playlist a variant only for a line starting with this tag: without it, the full
        # parse (the costliest step of planning a long media playlist, which is parsed again next) is moot.
        return None
    parsed = _loads(text)
    if not parsed.is_variant:
        return None
    choices = [(p.stream_info.bandwidth or 0, p.uri) for p in parsed.playlists if p.uri]
    if not choices:
        raise FetchError(ErrorType.PLAYLIST, "the master playlist lists no variant")
    bandwidth, uri = max(choices, key=lambda choice: choice[0])
    return Variant(urljoin(url, uri), bandwidth, len(choices))


def parse_media(text: str, url: str) -> MediaPlaylist:
    """Every segment with absolute URIs, explicit byte ranges, its key/IV and init section in force.

    Raises FetchError (unsupported_encryption) for SAMPLE-AES or any DRM key: such a stream cannot be
    saved as playable files, so it fails as a whole instead of leaving garbage.
    """
    parsed = _loads(text)
    if parsed.is_variant:
        raise FetchError(ErrorType.PLAYLIST, "a master playlist where a media playlist was expected")
    segments: list[RemoteSegment] = []
    range_end: dict[str, int] = {}  # where the last sub-range of each resource ended (implicit offsets)
    first_sequence = _whole(parsed.media_sequence or 0, "EXT-X-MEDIA-SEQUENCE", MAX_SEQUENCE)
    for position, seg in enumerate(parsed.segments):
        sequence = seg.media_sequence if seg.media_sequence is not None else first_sequence + position
        sequence = _whole(sequence, "media sequence number", MAX_SEQUENCE)
        uri = urljoin(url, seg.uri)
        byterange = _byterange(seg.byterange, range_end.get(uri, 0)) if seg.byterange else None
        if byterange is not None:
            range_end[uri] = byterange[0] + byterange[1]
        key_uri, key_iv = _key(seg.key, url, sequence)
        init_uri = None
        if seg.init_section is not None and seg.init_section.uri:
            init_uri = urljoin(url, seg.init_section.uri)
            if seg.init_section.byterange:
                offset_, length = _byterange(seg.init_section.byterange, 0)
                init_uri += f"#mediadl-range={length}@{offset_}"
        duration = _seconds(seg.duration or 0.0, "EXTINF duration")
        segments.append(
            RemoteSegment(sequence, uri, duration, byterange, key_uri, key_iv, init_uri, bool(seg.discontinuity))
        )
    target = _seconds(parsed.target_duration or 0.0, "EXT-X-TARGETDURATION")
    return MediaPlaylist(url, target, bool(parsed.is_endlist), segments)


def split_init_uri(init_uri: str) -> tuple[str, tuple[int, int] | None]:
    """The URL to fetch and the (offset, length) of an init section stored by parse_media."""
    match = _INIT_RANGE.search(init_uri)
    if match is None:
        return init_uri, None
    return init_uri[: match.start()], (int(match.group(2)), int(match.group(1)))


def _byterange(spec: str, implicit_offset: int) -> tuple[int, int]:
    length, _, offset = str(spec).partition("@")
    try:
        start, size = (int(offset) if offset else implicit_offset), int(length)
    except ValueError:
        raise FetchError(ErrorType.BAD_CONTENT, f"bad EXT-X-BYTERANGE {str(spec)[:40]!r}") from None
    if not (0 <= start <= MAX_BYTES and 0 < size <= MAX_BYTES):
        raise FetchError(ErrorType.BAD_CONTENT, f"EXT-X-BYTERANGE out of range: {str(spec)[:40]!r}")
    return start, size


def _loads(text: str) -> m3u8.M3U8:
    """The m3u8 parser's view; whatever it raises on hostile input is the origin's bad content, not ours."""
    try:
        return m3u8.loads(text)
    except Exception as exc:  # a third-party parser on hostile text may raise anything
        raise FetchError(ErrorType.BAD_CONTENT, f"the playlist could not be parsed: {type(exc).__name__}") from None


def _seconds(value: object, what: str) -> float:
    """A duration: a finite number of seconds from 0 to a day."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise FetchError(ErrorType.BAD_CONTENT, f"{what} is not a number") from None
    if not (math.isfinite(seconds) and 0.0 <= seconds <= MAX_SECONDS):
        raise FetchError(ErrorType.BAD_CONTENT, f"{what} out of range: {str(value)[:40]}")
    return seconds


def _whole(value: object, what: str, maximum: int) -> int:
    """A whole number from 0 to `maximum` (sequence numbers arrive as int, or float from a lenient parser)."""
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise FetchError(ErrorType.BAD_CONTENT, f"{what} is not a whole number: {str(value)[:40]}")
    if not isinstance(value, int | float) or not 0 <= int(value) <= maximum:
        raise FetchError(ErrorType.BAD_CONTENT, f"{what} out of range: {str(value)[:40]}")
    return int(value)


def _key(key: m3u8.Key | None, url: str, sequence: int) -> tuple[str | None, str | None]:
    if key is None or key.method in (None, "NONE"):
        return None, None
    keyformat = (key.keyformat or "identity").strip('"')
    if key.method != "AES-128" or keyformat != "identity":
        raise FetchError(
            ErrorType.UNSUPPORTED_ENCRYPTION,
            f"EXT-X-KEY METHOD={key.method} (KEYFORMAT={keyformat}) is not supported: only clear and AES-128 "
            "streams can be saved as playable files",
        )
    if not key.uri:
        raise FetchError(ErrorType.PLAYLIST, "an AES-128 EXT-X-KEY without a URI")
    try:
        iv = parse_iv(key.iv) if key.iv else iv_for_sequence(sequence)
    except ValueError as exc:
        raise FetchError(ErrorType.PLAYLIST, f"bad EXT-X-KEY IV: {exc}") from None
    return urljoin(url, key.uri), iv.hex()
