"""live_tail.parse_since against the whole parse: the same segments (keys, init sections, discontinuities,
explicit byte ranges), None where only a whole parse is right, and a long live window polled at the cost of
what changed."""

from __future__ import annotations

import pytest

from download_server.domain.models import TaskStatus
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.jobs import hls_playlist, live, live_tail
from download_server.engine.jobs.hls_playlist import parse_media
from download_server.engine.jobs.live_tail import parse_chunked, parse_packed, parse_since, take_slices
from tests.download.engine.conftest import Harness
from tests.download.engine.test_live import playlist

URL = "https://o.example/live/index.m3u8"
TRICKY = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:40
#EXT-X-MAP:URI="init0.mp4"
#EXTINF:2.0,
s40.m4s
#EXT-X-KEY:METHOD=AES-128,URI="k1.bin"
#EXTINF:2.0,
s41.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init1.mp4"
#EXTINF:2.0,
s42.m4s
#EXT-X-BYTERANGE:1000@0
#EXTINF:1.5,
s43.m4s
#EXTINF:2.0,
s44.m4s
"""


@pytest.mark.parametrize("after", [40, 41, 42, 43])
def test_the_tail_parses_like_the_whole(after: int) -> None:
    whole = parse_media(TRICKY, URL)
    tail = parse_since(TRICKY, URL, after)
    assert tail is not None
    assert tail.segments == [s for s in whole.segments if s.sequence > after]
    assert (tail.target_duration, tail.endlist) == (whole.target_duration, whole.endlist)


def test_nothing_new_is_an_empty_refresh_and_a_reset_or_all_new_needs_the_whole() -> None:
    unchanged = parse_since(TRICKY, URL, 44)
    assert unchanged is not None and unchanged.segments == [] and unchanged.target_duration == 2.0
    assert parse_since(TRICKY, URL, 45) is None  # the sequence went back: a reset, judged on the whole
    assert parse_since(TRICKY, URL, 39) is None  # everything is new
    implicit = TRICKY.replace("#EXT-X-BYTERANGE:1000@0", "#EXT-X-BYTERANGE:1000")
    assert parse_since(implicit, URL, 42) is None  # an offset that depends on what came before the cut


async def test_a_long_live_window_is_parsed_whole_once_then_only_what_slides_in(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[int] = []
    real = hls_playlist.parse_media

    def counting(text: str, url: str) -> hls_playlist.MediaPlaylist:
        result = real(text, url)
        parsed.append(len(result.segments))
        return result

    monkeypatch.setattr(hls_playlist, "parse_media", counting)
    window = 1000
    slides = [playlist(n, n + window - 1, files=[i % 6 for i in range(n, n + window)]) for n in range(0, 6)]
    harness.origin.sequence("live/long.m3u8", [*slides, playlist(5, 5 + window - 1, ended=True, files=[0] * window)])
    task = await harness.create("live/long.m3u8")
    done = await harness.run(task)

    assert done.segments_total == window + 5
    assert parsed[0] == window and max(parsed[1:]) <= 1  # one whole parse, then one new entry per poll


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_a_long_playlist_parsed_in_chunks_is_the_same_playlist(chunk: int) -> None:
    assert parse_chunked(TRICKY, URL, chunk) == parse_media(TRICKY, URL)


@pytest.mark.parametrize("after", [40, 43, 44])
def test_a_tail_knows_the_window_it_was_cut_from(after: int) -> None:
    """What the final sweep may retry: the indexes the whole window lists, not only the new entries."""
    tail = parse_since(TRICKY, URL, after)
    assert tail is not None and tail.listed_from == 40
    cursor = live.Cursor(sequence=44, index=14)  # local index = sequence - 30
    assert live.listed(cursor, tail) == range(10, 15)
    assert live.listed(cursor, parse_media(TRICKY, URL)) == range(10, 15)
    assert live.listed(None, tail) is None


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_a_packed_first_plan_hands_out_the_same_entries_and_lets_them_go(chunk: int) -> None:
    """parse_packed (a first plan) keeps the entries past the first chunk as buffers, not parsed objects
    (issue 15's pymalloc arenas); take_slices gives back the whole playlist in order and empties it."""
    whole = parse_media(TRICKY, URL)
    packed = parse_packed(TRICKY, URL, chunk)
    assert len(packed.segments) == chunk and len(packed.packed) == -(-(5 - chunk) // chunk)
    assert (packed.target_duration, packed.endlist, packed.listed_from) == (whole.target_duration, whole.endlist, 40)
    slices = list(take_slices(packed, 2))
    assert [s for part in slices for s in part] == whole.segments
    assert all(0 < len(part) <= 2 for part in slices)
    assert packed.segments == [] and packed.packed == []


def test_a_short_playlist_is_not_packed_and_a_bad_entry_anywhere_fails_the_load() -> None:
    assert parse_packed(TRICKY, URL) == parse_media(TRICKY, URL)
    drm = TRICKY + '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="k2.bin"\n#EXTINF:2.0,\ns45.m4s\n'
    with pytest.raises(FetchError) as raised:
        parse_packed(drm, URL, 1)  # the bad entry is in the last chunk: still found before anything is stored
    assert raised.value.error_type is ErrorType.UNSUPPORTED_ENCRYPTION


async def test_only_a_first_plan_is_packed_a_whole_reparse_of_a_live_poll_is_placed_whole(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll that needs the whole parse (here a reset: the sequence went back) is placed whole by _merge,
    which reads only `segments`: its entries must not stay packed."""
    monkeypatch.setattr(live_tail, "CHUNK", 2)
    harness.origin.sequence("live/reset.m3u8", [playlist(0, 5), playlist(0, 3, ended=True, files=[0, 1, 2, 3])])
    task = await harness.create("live/reset.m3u8")
    done = await harness.run(task)

    assert (done.status, done.segments_total, done.segments_done) == (TaskStatus.COMPLETED, 10, 10)
