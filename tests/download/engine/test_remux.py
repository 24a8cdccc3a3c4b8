"""The remux's per-packet loop (engine/output/remux.py): timestamps moved in the input's ticks and rescaled by
FFmpeg's muxer, decode times kept strictly rising across joins; the incremental build's process started with
the plan (engine/output/live_mux.py)."""

from __future__ import annotations

import collections
import itertools
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from av.rational import AVRational

from download_server.engine.output.live_mux import LiveMux, building_path
from download_server.engine.output.remux import _Lane, build_mp4, runs_of
from tests.conftest import MEDIA_FIXTURES
from tests.download.engine.test_output import probe
from tests.support.media import decoded_video_frames, ffprobe

FIXTURE = MEDIA_FIXTURES / "hls_ts"


def decode_times(mp4: Path) -> dict[str, list[int]]:
    lines = ffprobe(mp4, "-show_entries", "packet=stream_index,dts", "-of", "csv=p=0").split()
    times: dict[str, list[int]] = collections.defaultdict(list)
    for line in lines:
        stream, dts = line.split(",")[:2]
        times[stream].append(int(dts))
    return times


def test_a_recording_joined_to_itself_plays_on_with_decode_times_rising(tmp_path: Path) -> None:
    # The second run starts where the first one's video ended; its audio then overlaps the first run's last
    # audio packet, which has to be moved past it (the muxer refuses a decode time that does not rise).
    segments = sorted(FIXTURE.glob("seg*.ts"))
    entries = [(s, None, False) for s in segments] + [(s, None, i == 0) for i, s in enumerate(segments)]
    mp4 = tmp_path / "twice.mp4"
    build_mp4(list(runs_of(entries)), mp4)
    assert decoded_video_frames(mp4) == 120
    times = decode_times(mp4)
    assert set(times) == {"0", "1"}
    for stream in times.values():
        assert all(later > earlier for earlier, later in itertools.pairwise(stream))
    once = tmp_path / "once.mp4"
    build_mp4(list(runs_of([(s, None, False) for s in segments])), once)
    for joined, single in zip(probe(mp4)["streams"], probe(once)["streams"], strict=True):
        assert abs(float(joined["duration"]) - 2 * float(single["duration"])) <= 0.1, joined["codec_type"]


@pytest.mark.parametrize(
    ("source", "target"),
    [((1, 90000), (1, 48000)), ((1, 90000), (1, 45000)), ((1, 90000), (1, 12800)), ((1, 1000), (1, 90000))],
)
def test_ticks_round_as_the_muxer_rescales(source: tuple[int, int], target: tuple[int, int]) -> None:
    """The guard compares decode times in output ticks: it has to round exactly as av_rescale_q does."""
    unit, goal = Fraction(*source), Fraction(*target)
    lane = _Lane(None, "audio", (unit.numerator * goal.denominator, unit.denominator * goal.numerator), 0, None, None)
    for value in [*range(-400, 400), 15, -15, 45, -45, 1 << 40, -(1 << 40) - 7]:
        packet = av.Packet(b"x")
        packet.time_base = unit
        packet.pts = packet.dts = value
        packet.rescale_ts(AVRational(*target))
        assert lane.ticks(value) == packet.dts, value


class _NoRename:
    def run(self, fn: Any) -> Any:
        raise AssertionError("not renamed in this test")


def test_the_builder_process_starts_with_the_plan_and_stops_with_nothing_left(tmp_path: Path) -> None:
    target = tmp_path / "out" / "video.mp4"
    mux = LiveMux(target, _NoRename())  # type: ignore[arg-type]
    worker = None
    try:
        mux.planned([0, 1, 2])
        worker = mux._worker
        assert worker is not None and worker.poll() is None  # up before any segment finished
    finally:
        assert mux.close(None) is False  # the run ended without the MP4
    assert worker.returncode == 2 and not building_path(target).exists() and not target.exists()
    mux.planned([3])  # after the end: no second process
    assert mux._worker is None
