"""live_tail.parse_since against the whole parse: the same segments (keys, init sections, discontinuities,
explicit byte ranges), None where only a whole parse is right, and a long live window polled at the cost of
what changed."""

from __future__ import annotations

import pytest

from download_server.engine.jobs import hls_playlist, live
from download_server.engine.jobs.hls_playlist import parse_media
from download_server.engine.jobs.live_tail import parse_chunked, parse_since
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
