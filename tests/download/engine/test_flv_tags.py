"""The FLV tag reader and the recording timeline, byte by byte: a header or a tag split anywhere, what is not
FLV, a file cut mid-tag, and where tags land across connections (clock restarts, codec changes, rebounds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from download_server.engine.jobs.flv_tags import AUDIO, SCRIPT, VIDEO, NotFlv, Tag, TagReader, scan
from download_server.engine.jobs.flv_timeline import RecordingLimit, Timeline

HEADER = b"FLV\x01\x05\x00\x00\x00\x09" + b"\x00\x00\x00\x00"
AVC_SETUP = Tag.of(VIDEO, 0, b"\x17\x00\x00\x00\x00\x01\x64\x00\x0a")
AAC_SETUP = Tag.of(AUDIO, 0, b"\xaf\x00\x13\x90")
META = Tag.of(SCRIPT, 0, b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00")


def key(ms: int) -> Tag:
    return Tag.of(VIDEO, ms, b"\x17\x01\x00\x00\x00" + bytes(20))


def frame(ms: int) -> Tag:
    return Tag.of(VIDEO, ms, b"\x27\x01\x00\x00\x00" + bytes(10))


def sound(ms: int) -> Tag:
    return Tag.of(AUDIO, ms, b"\xaf\x01" + bytes(8))


def stream(*tags: Tag) -> bytes:
    return HEADER + b"".join(t.encode(t.timestamp) for t in tags)


def test_tags_split_anywhere_come_out_whole() -> None:
    tags = [META, AVC_SETUP, AAC_SETUP, key(0), sound(10), frame(40), Tag.of(VIDEO, 0x01_000_000 + 5, b"\x27\x01")]
    data = stream(*tags)
    reader = TagReader()
    got = [tag for i in range(len(data)) for tag in reader.feed(data[i : i + 1])]
    assert got == tags and reader.header == HEADER and reader.pending == 0
    assert [t.sequence_header for t in got[:4]] == [False, True, True, False]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"<!DOCTYPE html><html>", "signature"),
        (b"FLV\x02\x05\x00\x00\x00\x09", "version"),
        (b"FLV\x01\x05\x00\x00\x00\x03", "data offset"),
        (HEADER + b"\x07" + bytes(10), "tag type"),
    ],
)
def test_what_is_not_flv_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(NotFlv, match=why):
        TagReader().feed(data)


def test_an_html_page_is_refused_from_its_first_byte() -> None:
    with pytest.raises(NotFlv):
        TagReader().feed(b"<")


def test_a_file_cut_mid_tag_ends_at_its_last_whole_tag(tmp_path: Path) -> None:
    whole = stream(META, AVC_SETUP, AAC_SETUP, key(0), sound(23), frame(100))
    path = tmp_path / "cut.flv.part"
    path.write_bytes(whole + frame(200).encode(200)[:7])
    held = scan(path)
    assert held.end == len(whole) and held.header == HEADER and held.metadata
    assert (held.sequence, held.last, held.top, held.step) == (
        {VIDEO: AVC_SETUP.data, AUDIO: AAC_SETUP.data},
        {VIDEO: 100, AUDIO: 23},
        100,
        100,
    )
    assert held.video_frames == 2 and held.media_seconds == pytest.approx(0.2)


def placed(timeline: Timeline, *tags: Tag) -> list[tuple[int, int] | None]:
    """(kind, output timestamp) of each tag, None for a dropped one."""
    out: list[tuple[int, int] | None] = []
    for tag in tags:
        data = timeline.place(tag)
        out.append((data[0], int.from_bytes(data[4:7], "big") | data[7] << 24) if data else None)
    return out


def test_a_reconnect_continues_one_frame_after_the_last_tag_and_drops_repeated_setup() -> None:
    timeline = Timeline(repair=True)
    timeline.new_connection()
    assert placed(timeline, META, AVC_SETUP, AAC_SETUP, key(5000), frame(5100)) == [
        (SCRIPT, 0), (VIDEO, 0), (AUDIO, 0), (VIDEO, 0), (VIDEO, 100),
    ]  # fmt: skip
    timeline.new_connection()  # the origin's clock restarted at zero, and it resends its setup
    assert placed(timeline, META, AVC_SETUP, AAC_SETUP, key(0), sound(0), frame(100)) == [
        None, None, None, (VIDEO, 200), (AUDIO, 200), (VIDEO, 300),
    ]  # fmt: skip
    changed = Tag.of(VIDEO, 0, AVC_SETUP.data + b"\x01")
    timeline.new_connection()  # a new encoder setup is kept, at the join
    assert placed(timeline, changed, key(90_000)) == [(VIDEO, 400), (VIDEO, 400)]
    assert timeline.media_ms == 500


def test_within_a_connection_a_rebound_is_rejoined_and_decode_times_never_go_back() -> None:
    timeline = Timeline(repair=True)
    timeline.new_connection()
    assert placed(timeline, key(1000), frame(1040), frame(1040), frame(10), frame(50)) == [
        (VIDEO, 0), (VIDEO, 40), (VIDEO, 41), (VIDEO, 81), (VIDEO, 121),
    ]  # fmt: skip
    audio = Timeline(repair=True)
    audio.new_connection()
    assert placed(audio, sound(1000), sound(990), sound(1023)) == [(AUDIO, 0), (AUDIO, 0), (AUDIO, 23)]


def test_a_vod_file_keeps_its_own_timestamps_and_the_limit_ends_only_live_recordings() -> None:
    vod = Timeline()
    assert placed(vod, META, AVC_SETUP, key(40), AVC_SETUP, frame(140)) == [
        (SCRIPT, 0), (VIDEO, 0), (VIDEO, 40), (VIDEO, 0), (VIDEO, 140),
    ]  # fmt: skip
    live = Timeline(repair=True, limit_ms=1000)
    live.new_connection()
    placed(live, key(0), frame(500), frame(999))
    with pytest.raises(RecordingLimit, match="max_duration_seconds"):
        live.place(frame(1000))


def test_media_a_reconnect_resends_is_dropped_and_the_clock_goes_on() -> None:
    timeline = Timeline(repair=True)
    timeline.new_connection()
    placed(timeline, AVC_SETUP, key(1000), sound(1010), frame(1100), sound(1110))
    timeline.new_connection()  # the same clock, starting with the last group of pictures again
    assert placed(timeline, AVC_SETUP, key(1000), sound(1010), frame(1100), sound(1110), frame(1200)) == [
        None, None, None, None, None, (VIDEO, 200),
    ]  # fmt: skip
    assert timeline.seamless is True
    timeline.new_connection()  # an encoder restarted on the same times, other pictures: joined, not dropped
    assert placed(timeline, Tag.of(VIDEO, 1200, b"\x17\x01" + bytes(7))) == [(VIDEO, 300)]
    assert timeline.seamless is False
