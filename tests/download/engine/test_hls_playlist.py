"""Remote playlist parsing, AES-128 decryption and the local playlist, without any I/O."""

from __future__ import annotations

import os

import pytest

from download_server.domain.models import Segment, SegmentStatus
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.jobs import hls_playlist
from download_server.engine.jobs import local_playlist as playlist
from download_server.engine.jobs.crypto import Aes128CbcDecryptor, iv_for_sequence
from tests.support.media import encrypt

BASE = "https://cdn.example/live/stream/index.m3u8"


def test_media_playlist_facts() -> None:
    text = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-MAP:URI="init.mp4",BYTERANGE="720@0"
#EXT-X-KEY:METHOD=AES-128,URI="/keys/k1"
#EXTINF:4.0,
#EXT-X-BYTERANGE:1000@720
all.mp4
#EXTINF:4.0,
#EXT-X-BYTERANGE:2000
all.mp4
#EXT-X-DISCONTINUITY
#EXT-X-KEY:METHOD=AES-128,URI="k2",IV=0X0000000000000000000000000000ABCD
#EXTINF:3.5,
https://other.example/abs.m4s
#EXT-X-KEY:METHOD=NONE
#EXTINF:2,
../up.m4s
#EXT-X-ENDLIST
"""
    parsed = hls_playlist.parse_media(text, BASE)
    assert (parsed.target_duration, parsed.endlist) == (4.0, True)
    first, second, third, fourth = parsed.segments
    assert [s.sequence for s in parsed.segments] == [41, 42, 43, 44]
    assert (first.uri, first.byterange, second.byterange) == (
        "https://cdn.example/live/stream/all.mp4",
        (720, 1000),
        (1720, 2000),
    )
    assert first.key_uri == "https://cdn.example/keys/k1" and first.key_iv == iv_for_sequence(41).hex()
    assert second.key_iv == iv_for_sequence(42).hex()
    assert (third.uri, third.discontinuity, third.key_iv) == (
        "https://other.example/abs.m4s",
        True,
        "abcd".rjust(32, "0"),
    )
    assert third.key_uri == "https://cdn.example/live/stream/k2"
    assert (fourth.uri, fourth.key_uri, fourth.duration) == ("https://cdn.example/live/up.m4s", None, 2.0)
    assert hls_playlist.split_init_uri(first.init_uri or "") == ("https://cdn.example/live/stream/init.mp4", (0, 720))


@pytest.mark.parametrize(
    "key_line",
    [
        '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="k"',
        '#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="k"',
        '#EXT-X-KEY:METHOD=AES-128,URI="skd://x",KEYFORMAT="com.apple.streamingkeydelivery"',
    ],
)
def test_drm_and_sample_encryption_are_refused(key_line: str) -> None:
    text = f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n{key_line}\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n"
    with pytest.raises(FetchError) as caught:
        hls_playlist.parse_media(text, BASE)
    assert caught.value.error_type is ErrorType.UNSUPPORTED_ENCRYPTION


def test_master_playlist_picks_highest_bandwidth() -> None:
    text = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=800000
mid/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2500000
https://hd.example/hd.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=200000
low/index.m3u8
"""
    variant = hls_playlist.pick_variant(text, BASE)
    assert variant == hls_playlist.Variant("https://hd.example/hd.m3u8", 2500000, 3)
    assert hls_playlist.pick_variant("#EXTM3U\n#EXTINF:1,\na.ts\n", BASE) is None


def test_not_a_playlist_is_a_playlist_error() -> None:
    with pytest.raises(FetchError) as caught:
        hls_playlist.decode(b"<html>login</html>")
    assert caught.value.error_type is ErrorType.PLAYLIST


@pytest.mark.parametrize("chunk", [1, 7, 16, 4096])
def test_aes128_decrypts_any_chunking(chunk: int) -> None:
    key, iv, plain = os.urandom(16), os.urandom(16), os.urandom(10_001)
    data = encrypt(plain, key, iv)
    decryptor = Aes128CbcDecryptor(key, iv)
    out = b"".join(decryptor.update(data[i : i + chunk]) for i in range(0, len(data), chunk))
    assert out + decryptor.finalize() == plain


def test_aes128_wrong_key_or_cut_ciphertext_is_refused() -> None:
    # Fixed bytes: a wrong key yields valid-looking padding for about one key in 256, so no random keys here.
    key, iv = b"k" * 16, b"i" * 16
    data = encrypt(b"x" * 100, key, iv)
    wrong = Aes128CbcDecryptor(b"w" * 16, iv)
    wrong.update(data)
    with pytest.raises(ValueError, match="padding"):
        wrong.finalize()
    cut = Aes128CbcDecryptor(key, iv)
    cut.update(data[:-3])
    with pytest.raises(ValueError, match="whole number"):
        cut.finalize()


def seg(index: int, *, done: bool = True, init: str | None = None, disc: bool = False) -> Segment:
    status = SegmentStatus.DONE if done else SegmentStatus.FAILED
    return Segment("t", index, f"https://x/{index}", duration=2.5, init_uri=init, discontinuity=disc, status=status)


def test_local_playlist_marks_gaps_and_init_changes() -> None:
    segments = [
        seg(0, init="a"),
        seg(1, done=False, init="a"),
        seg(2, init="a"),
        seg(3, init="b"),
        seg(4, init="b", disc=True),
    ]
    text = playlist.render(segments, ended=True)
    assert text.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:3",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        '#EXT-X-MAP:URI="init_0.mp4"',
        "#EXTINF:2.500000,",
        "ts/0.m4s",
        "#EXT-X-DISCONTINUITY",
        "#EXTINF:2.500000,",
        "ts/2.m4s",
        '#EXT-X-MAP:URI="init_1.mp4"',
        "#EXTINF:2.500000,",
        "ts/3.m4s",
        "#EXT-X-DISCONTINUITY",
        "#EXTINF:2.500000,",
        "ts/4.m4s",
        "#EXT-X-ENDLIST",
    ]
    assert "ENDLIST" not in playlist.render(segments, ended=False)
