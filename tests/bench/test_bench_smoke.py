"""Each benchmark runs end to end on a small input: real origin and server processes, every byte checked."""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from pathlib import Path

import pytest

from bench import (
    baselines,
    dash_vod,
    flv_recording,
    h2load_unary,
    hls_throughput,
    live_window,
    mp4_memory,
    recording,
    run_all,
    s3,
)
from bench.memory import PEAK_TARGET_MIB
from bench.origin import OriginProcess
from bench.report import Row, Spread, table
from bench.synthetic import KiB, MiB, Mp4Layout, Pool


def test_hls_bench_runs_on_twenty_segments(tmp_path: Path) -> None:
    # curl and aria2c when this machine has them (the bench itself would install them as root).
    has_curl, has_aria2 = shutil.which("curl") is not None, shutil.which("aria2c") is not None
    options = hls_throughput.HlsOptions(
        segments=20, repeat=1, ytdlp=False, workdir=tmp_path, curl=has_curl, aria2=has_aria2
    )
    lines: list[str] = []
    result = hls_throughput.measure(options, lines.append)  # raises if any contender wrote a wrong byte

    whole, bare = result.contenders["mediadl"], result.contenders["bare"]
    assert len(whole.wall) == len(bare.wall) == len(whole.cpu) == 1
    assert min(*whole.wall, *bare.wall) > 0
    # CPU clocks tick in 10 ms: a 20-segment bare loop can take less than one tick.
    assert min(*whole.cpu, *bare.cpu) >= 0 and whole.cpu[0] + bare.cpu[0] > 0
    ratio = bare.ratio_to(whole).median
    assert ratio == pytest.approx(bare.wall[0] / whole.wall[0])
    tools = {name for name, present in (("curl", has_curl), ("aria2c", has_aria2)) if present}
    assert set(result.contenders) == {"mediadl", "bare"} | tools
    assert "yt-dlp" not in result.contenders and "skipped" in result.notes["yt-dlp"]
    rows = {row.what: row for row in result.rows()}
    assert rows["HLS mediadl against the bare aiohttp loop (its time / ours)"].met is (ratio >= 1.0)
    share = rows.get("HLS mediadl: share of curl -Z's speed (curl's time / mediadl's)")
    if has_curl:
        assert share is not None
        curl_share = result.contenders["curl"].ratio_to(whole).median
        assert share.met is (curl_share >= hls_throughput.CURL_TARGET)
    else:
        assert share is None
    assert any(line.startswith("round 1: mediadl") for line in lines)
    assert list(tmp_path.iterdir()) == []  # the work directory is removed


def test_curl_and_aria2_baselines_fetch_every_segment(tmp_path: Path) -> None:
    pool = Pool(64 * KiB)
    with OriginProcess() as origin:
        playlist = origin.url(f"hls/8/{64 * KiB}/index.m3u8")
        with urllib.request.urlopen(playlist, timeout=30) as resp:
            urls = baselines.segment_urls(resp.read().decode(), playlist)
        assert len(urls) == 8
        expected = [hashlib.sha256(pool.segment(i)).hexdigest() for i in range(8)]
        for name, run in (("curl", baselines.curl_parallel), ("aria2c", baselines.aria2c)):
            binary = shutil.which(name)
            if binary is None:
                continue  # the bench installs it when root; this test does not
            seconds, cpu = run(binary, urls, tmp_path / name, 4)
            assert seconds > 0 and cpu >= 0
            hls_throughput.check_files([tmp_path / name / f"{i}.ts" for i in range(8)], expected, name)
            assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == []  # its list file is gone


@pytest.mark.skipif(baselines.ytdlp_command() is None, reason="yt-dlp is not installed (pip install yt-dlp)")
def test_ytdlp_baseline_writes_the_stream_in_order(tmp_path: Path) -> None:
    command = baselines.ytdlp_command()
    assert command is not None
    pool = Pool(64 * KiB)
    with OriginProcess() as origin:
        url = origin.url(f"hls/8/{64 * KiB}/index.m3u8")
        seconds, cpu = baselines.ytdlp(command, url, tmp_path / "out", concurrency=8)
    assert seconds > 0 and cpu > 0
    expected = hashlib.sha256(b"".join(pool.segment(i) for i in range(8))).hexdigest()
    hls_throughput.check_concatenation(tmp_path / "out", expected)  # raises unless one file, in order


def test_mp4_bench_runs_on_eight_mib(tmp_path: Path) -> None:
    result = mp4_memory.measure(mp4_memory.Mp4Options(size_mib=8, workdir=tmp_path), lambda _: None)

    assert 10 < result.idle_mib <= result.peak_mib.median
    peak_row = next(row for row in result.rows() if "peak RSS" in row.what)
    assert peak_row.met is (result.peak_mib.median < PEAK_TARGET_MIB)


def test_s3_bench_runs_on_a_small_stream_and_file(tmp_path: Path) -> None:
    options = s3.S3Options(segments=10, repeat=1, size_mib=20, workdir=tmp_path)
    lines: list[str] = []
    result = s3.measure(options, lines.append)  # raises if a segment or the MP4 in the bucket is wrong

    assert len(result.local.values) == len(result.s3.values) == 1
    assert result.ratios.median == pytest.approx(result.s3.values[0] / result.local.values[0])
    assert 10 < result.idle_mib <= min(result.peak_mib, result.growing_peak_mib)
    peak_rows = [row for row in result.rows() if "peak RSS" in row.what]
    assert [row.met for row in peak_rows] == [p < PEAK_TARGET_MIB for p in (result.peak_mib, result.growing_peak_mib)]
    assert any(line.startswith("MP4 (1 connection(s))") for line in lines)
    assert any(line.startswith("round 1: local") for line in lines)
    assert list(tmp_path.iterdir()) == []


def test_synthetic_mp4_is_exactly_its_size_from_any_offset() -> None:
    layout = Mp4Layout(3 * MiB + 5, Pool(MiB).pattern())
    whole = b"".join(bytes(piece) for piece in layout.chunks())
    assert len(whole) == layout.size
    assert whole[4:8] == b"ftyp" and whole[-len(layout.tail) :] == layout.tail
    assert b"".join(bytes(piece) for piece in layout.chunks(start=1_000_003)) == whole[1_000_003:]


def test_run_all_rewrites_only_its_block(tmp_path: Path) -> None:
    document = tmp_path / "benchmarks.md"
    document.write_text(f"# Benchmarks\n\nprose before\n\n{run_all.BEGIN}\nold table\n{run_all.END}\n\nprose after\n")
    run_all.write(document, "new table")
    run_all.write(document, "newer table")
    text = document.read_text()
    assert text == f"# Benchmarks\n\nprose before\n\n{run_all.BEGIN}\nnewer table\n{run_all.END}\n\nprose after\n"


def test_table_shows_median_spread_and_verdict() -> None:
    rows = [Row("ratio", Spread.of([0.7, 0.9, 0.8]).show(), ">= 0.67", True), Row("peak", "160 MiB", "< 150", False)]
    assert table(rows).splitlines()[2:] == [
        "| ratio | 0.80 (0.70-0.90, n=3) | >= 0.67 | yes |",
        "| peak | 160 MiB | < 150 | **no** |",
    ]


def test_recording_bench_runs_on_eight_mib_and_six_seconds_of_video(tmp_path: Path) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed: the remux part needs real media")
    options = recording.RecordingOptions(size_mib=8, minutes=0.1, workdir=tmp_path, rounds=1, replay_mib_s=50.0)
    rows = recording.bench_rows(options, lambda _: None)  # raises if ReadVideo returned other bytes
    assert any("ReadVideo" in row.what for row in rows) and any("remux" in row.what for row in rows)
    (wait,) = [row for row in rows if "last segment finished -> MP4 ready" in row.what]
    assert wait.target == "<= 25%" and wait.met is not None
    assert sum("incremental build alone" in row.what for row in rows) == 4


def test_dash_bench_runs_on_a_few_mib(tmp_path: Path) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed (CI installs it)")
    options = dash_vod.DashOptions(size_mib=4, repeat=1, ytdlp=False, workdir=tmp_path)
    rows = {row.what: row for row in dash_vod.measure(options, lambda _: None)}  # raises on a wrong byte
    assert "MiB/s" in rows["DASH (a) throughput"].measured
    assert "skipped" in rows["DASH (c) yt-dlp -f bv,ba"].measured


def test_live_window_bench_runs_on_a_small_window(tmp_path: Path) -> None:
    result = live_window.measure(live_window.LiveOptions(window=200, seconds=2.0, workdir=tmp_path), lambda _: None)
    assert result.polls >= 1 and 0 <= result.cpu_share < 1


def test_register_flood_bench_runs_and_the_flood_is_cut() -> None:
    from bench import register_flood

    result = register_flood.measure(10, 0.5, "4", unbounded=False)
    assert result.alone.calls > 0 and result.during.calls > 0
    assert result.during.errors == 0  # legitimate logins all succeed during the flood
    assert result.flood.errors > 0  # the flood is refused (throttle or hashing lanes)


def test_flv_bench_runs_on_two_mib() -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg makes the FLV media")
    # measure() raises if a file written differs from the source.
    rows = flv_recording.measure(2, 1, lambda _: None, clip_seconds=2)
    assert [row.met for row in rows if row.met is not None] and len(rows) == 6


def test_grpc_frame_is_the_five_byte_prefix_and_the_message() -> None:
    assert h2load_unary.frame(b"") == b"\x00\x00\x00\x00\x00"
    assert h2load_unary.frame(b"\x0a\x03abc") == b"\x00\x00\x00\x00\x05\x0a\x03abc"


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load is not installed (Debian nghttp2-client)")
def test_h2load_bench_counts_only_grpc_ok_calls() -> None:
    lines: list[str] = []
    rows = h2load_unary.bench_rows(lines.append, quick=True)  # raises if any counted call was not grpc-status OK

    assert any(line.startswith("control:") and "counted 0 OK" in line for line in lines)
    assert {row.what.split(",")[0] for row in rows} == {
        "h2load GetTask vs health Check",
        "h2load GetMe vs health Check",
        "h2load auth interceptor cost",
    }
