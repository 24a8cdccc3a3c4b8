"""Real DASH media for the tests, made once per session with ffmpeg: a short clip (video 25 fps + AAC) in
each addressing mode the engine reads, plus MPDs written over ffmpeg's segments (two periods, SegmentList,
SegmentBase with a sidx, $Time$ names, protected content)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

FPS = 25
SECONDS = 4
FRAMES = FPS * SECONDS  # video frames of one clip
SECOND_CLIP_SECONDS = 2
_ENCODE = ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(FPS), "-keyint_min", str(FPS), "-sc_threshold", "0"]
_AUDIO = ["-c:a", "aac", "-b:a", "32k"]


def _ffmpeg(*args: str) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg not installed: the DASH fixtures are made with it")
    subprocess.run([ffmpeg, "-v", "error", "-y", *args], check=True, timeout=120)


def _sources(seconds: int, tone: int = 440) -> list[str]:
    return [
        "-f", "lavfi", "-i", f"testsrc=size=160x120:rate={FPS}:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=44100:duration={seconds}",
    ]  # fmt: skip


def _dash(folder: Path, seconds: int, *, timeline: bool, tone: int = 440) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _ffmpeg(
        *_sources(seconds, tone), *_ENCODE, *_AUDIO, "-f", "dash", "-seg_duration", "1",
        "-use_template", "1", "-use_timeline", "1" if timeline else "0", str(folder / "manifest.mpd"),
    )  # fmt: skip


def make_all(root: Path) -> Path:
    """Every fixture under `root` (each a folder with a manifest.mpd the tests request)."""
    _dash(root / "number", SECONDS, timeline=False)
    _dash(root / "timeline", SECONDS, timeline=True)
    _dash(root / "second", SECOND_CLIP_SECONDS, timeline=True, tone=880)
    _time_names(root / "timeline", root / "time")
    _segment_list(root / "timeline", root / "list")
    _segment_base(root / "base")
    _two_periods(root)
    _protected(root / "timeline", root / "cenc")
    return root


def timeline_entries(text: str) -> dict[str, list[tuple[int, int]]]:
    """Representation id -> (time, duration) of each segment, from ffmpeg's SegmentTimeline."""
    found: dict[str, list[tuple[int, int]]] = {}
    for rep, body in re.findall(r'<Representation id="(\d+)".*?<SegmentTimeline>(.*?)</SegmentTimeline>', text, re.S):
        time, entries = 0, []
        for t, d, r in re.findall(r'<S (?:t="(\d+)" )?d="(\d+)"(?: r="(\d+)")? />', body):
            time = int(t) if t else time
            for _ in range(int(r or 0) + 1):
                entries.append((time, int(d)))
                time += int(d)
        found[rep] = entries
    return found


def _time_names(source: Path, target: Path) -> None:
    """The timeline clip with segments named by $Time$ instead of $Number$."""
    target.mkdir(parents=True, exist_ok=True)
    text = (source / "manifest.mpd").read_text()
    for rep, entries in timeline_entries(text).items():
        shutil.copy(source / f"init-stream{rep}.m4s", target / f"init-stream{rep}.m4s")
        for number, (time, _) in enumerate(entries, start=1):
            shutil.copy(source / f"chunk-stream{rep}-{number:05d}.m4s", target / f"t-{rep}-{time}.m4s")
    text = text.replace("chunk-stream$RepresentationID$-$Number%05d$.m4s", "t-$RepresentationID$-$Time$.m4s")
    (target / "manifest.mpd").write_text(text)


def _segment_list(source: Path, target: Path) -> None:
    """SegmentList over ffmpeg's segments, with BaseURL resolution at the MPD and Representation levels."""
    (target / "media").mkdir(parents=True, exist_ok=True)
    text = (source / "manifest.mpd").read_text()
    adaptations = []
    for rep, entries in timeline_entries(text).items():
        kind = "video" if rep == "0" else "audio"
        shutil.copy(source / f"init-stream{rep}.m4s", target / "media" / f"init-{rep}.mp4")
        urls = []
        for number in range(1, len(entries) + 1):
            shutil.copy(source / f"chunk-stream{rep}-{number:05d}.m4s", target / "media" / f"{rep}-{number}.m4s")
            urls.append(f'<SegmentURL media="{rep}-{number}.m4s"/>')
        timescale = 12800 if kind == "video" else 44100
        adaptations.append(
            f'<AdaptationSet contentType="{kind}"><Representation id="{rep}" mimeType="{kind}/mp4" bandwidth="1000">'
            f'<SegmentList timescale="{timescale}" duration="{entries[0][1]}">'
            f'<Initialization sourceURL="init-{rep}.mp4"/>{"".join(urls)}</SegmentList>'
            "</Representation></AdaptationSet>"
        )
    (target / "manifest.mpd").write_text(
        f'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        f'mediaPresentationDuration="PT{SECONDS}S"><BaseURL>media/</BaseURL><Period>{"".join(adaptations)}</Period></MPD>'
    )


def _boxes(data: bytes) -> dict[bytes, tuple[int, int]]:
    found: dict[bytes, tuple[int, int]] = {}
    position = 0
    while position + 8 <= len(data):
        size, name = struct.unpack_from(">I4s", data, position)
        found.setdefault(name, (position, size))
        position += size
    return found


def _segment_base(target: Path) -> None:
    """One fragmented MP4 per track with a global sidx: SegmentBase with indexRange (read from the box)."""
    target.mkdir(parents=True, exist_ok=True)
    flags = ["-movflags", "+frag_keyframe+empty_moov+default_base_moof+global_sidx", "-frag_duration", "1000000"]
    _ffmpeg(*_sources(SECONDS), "-map", "0:v", *_ENCODE, *flags, str(target / "video.mp4"))
    _ffmpeg(*_sources(SECONDS), "-map", "1:a", *_AUDIO, *flags, str(target / "audio.mp4"))
    adaptations = []
    for kind in ("video", "audio"):
        offset, size = _boxes((target / f"{kind}.mp4").read_bytes())[b"sidx"]
        adaptations.append(
            f'<AdaptationSet mimeType="{kind}/mp4"><Representation id="{kind}" bandwidth="1000">'
            f"<BaseURL>{kind}.mp4</BaseURL>"
            f'<SegmentBase indexRange="{offset}-{offset + size - 1}"><Initialization range="0-{offset - 1}"/>'
            f"</SegmentBase></Representation></AdaptationSet>"
        )
    (target / "manifest.mpd").write_text(
        f'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        f'mediaPresentationDuration="PT{SECONDS}S"><Period>{"".join(adaptations)}</Period></MPD>'
    )


def _period_body(text: str) -> str:
    return text[text.index("<AdaptationSet") : text.rindex("</Period>")]


def _two_periods(root: Path) -> None:
    """Two periods (the 4 s clip, then the 2 s one), each from its own folder by a Period-level BaseURL."""
    first = _period_body((root / "timeline" / "manifest.mpd").read_text())
    second = _period_body((root / "second" / "manifest.mpd").read_text())
    (root / "two").mkdir(exist_ok=True)
    (root / "two" / "manifest.mpd").write_text(
        '<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        f'mediaPresentationDuration="PT{SECONDS + SECOND_CLIP_SECONDS}S">'
        f'<Period id="a" duration="PT{SECONDS}S"><BaseURL>../timeline/</BaseURL>{first}</Period>'
        f'<Period id="b"><BaseURL>../second/</BaseURL>{second}</Period></MPD>'
    )


def _protected(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    text = (source / "manifest.mpd").read_text()
    protection = (
        '<ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cenc"/>'
        '<ContentProtection schemeIdUri="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"/>'
    )
    text = text.replace('<Representation id="0"', protection + '<Representation id="0"', 1)
    (target / "manifest.mpd").write_text(
        text.replace('initialization="', 'initialization="../timeline/').replace('media="', 'media="../timeline/')
    )
