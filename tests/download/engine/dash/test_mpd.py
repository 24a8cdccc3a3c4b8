"""The MPD planner on hand-written MPDs: addressing modes, inheritance, BaseURL levels, live windows, and
hostile input refused in bounded time and memory."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.jobs import mpd
from download_server.engine.jobs.mpd_model import Ref

URL = "https://cdn.example.com/show/manifest.mpd"


def _mpd(period: str, *, head: str = 'type="static" mediaPresentationDuration="PT8S"', top: str = "") -> bytes:
    return f'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" {head}>{top}<Period>{period}</Period></MPD>'.encode()


def _video(inner: str, *, bandwidth: int = 1000, rep: str = "v1") -> str:
    return (
        f'<AdaptationSet contentType="video"><Representation id="{rep}" mimeType="video/mp4" '
        f'bandwidth="{bandwidth}">{inner}</Representation></AdaptationSet>'
    )


def test_number_template_fills_identifiers_and_counts_from_the_duration() -> None:
    template = (
        '<SegmentTemplate timescale="1000" duration="2000" startNumber="7" initialization="$RepresentationID$/i.mp4" '
        'media="$RepresentationID$/$Bandwidth$-$Number%03d$.m4s"/>'
    )
    manifest = mpd.parse(_mpd(_video(template)), URL)
    track = manifest.periods[0].tracks["video"]
    assert track.init == "https://cdn.example.com/show/v1/i.mp4"
    assert [r.url.rsplit("/", 1)[1] for r in track.refs] == [
        "1000-007.m4s",
        "1000-008.m4s",
        "1000-009.m4s",
        "1000-010.m4s",
    ]
    assert [r.start for r in track.refs] == [0.0, 2.0, 4.0, 6.0]


def test_timeline_repeats_and_an_open_repeat_up_to_the_next_entry() -> None:
    timeline = '<S t="100" d="10" r="2"/><S d="5" r="-1"/><S t="150" d="20"/>'
    template = (
        '<SegmentTemplate timescale="10" presentationTimeOffset="100" media="s-$Time$.m4s">'
        f"<SegmentTimeline>{timeline}</SegmentTimeline></SegmentTemplate>"
    )
    refs = mpd.parse(_mpd(_video(template)), URL).periods[0].tracks["video"].refs
    times = [int(r.url.rsplit("-", 1)[1].split(".")[0]) for r in refs]
    assert times == [100, 110, 120, 130, 135, 140, 145, 150]
    assert refs[0].start == 0.0 and refs[-1].start == 5.0 and refs[-1].duration == 2.0


def test_template_inherits_from_the_adaptation_set_and_the_nearest_level_wins() -> None:
    period = (
        '<AdaptationSet mimeType="audio/mp4"><SegmentTemplate timescale="1" duration="4" media="a/$Number$.m4s"/>'
        '<Representation id="lo" bandwidth="10"/><Representation id="hi" bandwidth="20">'
        '<SegmentTemplate media="hi/$Number$.m4s"/></Representation></AdaptationSet>'
    )
    track = mpd.parse(_mpd(period), URL).periods[0].tracks["audio"]
    assert (track.representation, track.bandwidth, track.choices) == ("hi", 20, 2)
    assert [r.url for r in track.refs] == [f"https://cdn.example.com/show/hi/{n}.m4s" for n in (1, 2)]


def test_base_urls_resolve_level_by_level() -> None:
    body = (
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2S">'
        "<BaseURL>https://media.example.net/root/</BaseURL><Period><BaseURL>p1/</BaseURL>"
        '<AdaptationSet mimeType="video/mp4"><BaseURL>video/</BaseURL><Representation id="r" bandwidth="1">'
        '<BaseURL>hd/</BaseURL><SegmentList duration="2"><Initialization sourceURL="init.mp4"/>'
        '<SegmentURL media="a.m4s" mediaRange="10-19"/></SegmentList></Representation></AdaptationSet></Period></MPD>'
    )
    track = mpd.parse(body.encode(), URL).periods[0].tracks["video"]
    assert track.init == "https://media.example.net/root/p1/video/hd/init.mp4"
    assert track.refs == [Ref("https://media.example.net/root/p1/video/hd/a.m4s", 0.0, 2.0, (10, 10))]


def test_the_best_video_and_audio_are_chosen_and_text_is_ignored() -> None:
    period = (
        _video("<BaseURL>low.mp4</BaseURL>", bandwidth=100, rep="low")
        + _video("<BaseURL>high.mp4</BaseURL>", bandwidth=900, rep="high")
        + '<AdaptationSet contentType="text"><Representation id="subs" bandwidth="5000"/></AdaptationSet>'
        + '<AdaptationSet contentType="audio"><Representation id="a" bandwidth="64"><BaseURL>a.mp4</BaseURL>'
        "</Representation></AdaptationSet>"
    )
    tracks = mpd.parse(_mpd(period), URL).periods[0].tracks
    assert sorted(tracks) == ["audio", "video"]
    assert tracks["video"].refs[0].url.endswith("/high.mp4") and tracks["video"].choices == 2


def test_codecs_are_the_representations_or_else_their_adaptation_sets() -> None:
    period = (
        '<AdaptationSet contentType="video" codecs="avc1.4d401f"><Representation id="v" bandwidth="900">'
        "<BaseURL>v.mp4</BaseURL></Representation></AdaptationSet>"
        '<AdaptationSet contentType="audio" codecs="mp4a.40.5"><Representation id="a" bandwidth="64" '
        'codecs="mp4a.40.2"><BaseURL>a.mp4</BaseURL></Representation></AdaptationSet>'
    )
    tracks = mpd.parse(_mpd(period), URL).periods[0].tracks
    assert (tracks["video"].codecs, tracks["audio"].codecs) == ("avc1.4d401f", "mp4a.40.2")
    assert mpd.parse(_mpd(_video("<BaseURL>v.mp4</BaseURL>")), URL).periods[0].tracks["video"].codecs == ""


def test_live_number_template_lists_the_time_shift_window() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    head = (
        'type="dynamic" availabilityStartTime="2026-01-01T00:00:00Z" minimumUpdatePeriod="PT2S" '
        'timeShiftBufferDepth="PT10S"'
    )
    template = '<SegmentTemplate timescale="1" duration="2" startNumber="1" media="$Number$.m4s"/>'
    manifest = mpd.parse(_mpd(_video(template), head=head), URL, now=start + timedelta(seconds=101))
    refs = manifest.periods[0].tracks["video"].refs
    assert manifest.dynamic and manifest.update_period == 2.0
    # 50 segments have ended by t=101 s; the 10 s window keeps the last five.
    assert [r.url.rsplit("/", 1)[1] for r in refs] == [f"{n}.m4s" for n in range(46, 51)]


_TIMELINE_BOMB = '<SegmentTemplate media="$Time$.m4s"><SegmentTimeline><S d="1" r="1000000000"/></SegmentTimeline>'
_NUMBER_BOMB = '<SegmentTemplate timescale="1000000" duration="1" media="$Number$.m4s"/>'
_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><MPD>&lol2;</MPD>'
)
_EXTERNAL = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><MPD>&e;</MPD>'
_CENC = '<ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cenc"/>'
_NEGATIVE = '<SegmentTemplate media="x"><SegmentTimeline><S d="-5"/></SegmentTimeline></SegmentTemplate>'
HOSTILE = {
    "billion-r": (_mpd(_video(_TIMELINE_BOMB + "</SegmentTemplate>")), ErrorType.TOO_LARGE, "more than"),
    "billion-number": (
        _mpd(_video(_NUMBER_BOMB), head='type="static" mediaPresentationDuration="PT100000S"'),
        ErrorType.TOO_LARGE,
        "more than",
    ),
    "billion-laughs": (_LAUGHS, ErrorType.BAD_CONTENT, "DTD"),
    "external-entity": (_EXTERNAL, ErrorType.BAD_CONTENT, "DTD"),
    "html": (b"<html><body>login</body></html>", ErrorType.BAD_CONTENT, "not an MPD"),
    "cut": (b"<MPD", ErrorType.BAD_CONTENT, "well-formed"),
    "cenc": (_mpd(_video(_CENC)), ErrorType.BAD_CONTENT, "encrypted (cenc) not supported"),
    "negative-d": (_mpd(_video(_NEGATIVE)), ErrorType.BAD_CONTENT, "positive"),
    "huge-duration": (
        _mpd(_video("<BaseURL>a.mp4</BaseURL>"), head='type="static" mediaPresentationDuration="P99999999Y"'),
        ErrorType.BAD_CONTENT,
        "out of range",
    ),
}


@pytest.mark.parametrize(("body", "error_type", "words"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_mpds_fail_fast_in_bounded_memory(body: bytes, error_type: ErrorType, words: str) -> None:
    # Bounded time: pytest-timeout ends a planner that expands 1e9 entries (hours); bounded memory: measured.
    tracemalloc.start()
    try:
        with pytest.raises(FetchError) as raised:
            mpd.parse(body, URL)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raised.value.error_type is error_type
    assert words in raised.value.message
    assert peak < 20 * 1024 * 1024


def test_time_template_without_a_timeline_counts_time_from_the_offset() -> None:
    template = '<SegmentTemplate timescale="10" duration="20" presentationTimeOffset="5" media="t$Time$.m4s"/>'
    refs = mpd.parse(_mpd(_video(template), head='type="static" mediaPresentationDuration="PT6S"'), URL).periods[0]
    assert [r.url.rsplit("/", 1)[1] for r in refs.tracks["video"].refs] == ["t5.m4s", "t25.m4s", "t45.m4s"]


def test_multiple_periods_start_where_the_previous_ended() -> None:
    body = (
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT10S">'
        f'<Period duration="PT4S">{_video("<BaseURL>a.mp4</BaseURL>")}</Period>'
        f"<Period>{_video('<BaseURL>b.mp4</BaseURL>')}</Period></MPD>"
    )
    periods = mpd.parse(body.encode(), URL).periods
    assert [(p.start, p.tracks["video"].refs[0].duration) for p in periods] == [(0.0, 4.0), (4.0, 6.0)]
