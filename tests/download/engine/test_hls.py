"""Every HLS fixture downloaded through the scheduler from the local origin reproduces manifest.json and plays."""

from __future__ import annotations

from typing import Any

import pytest

from download_server.domain.models import FailureStatus, SegmentStatus, TaskStatus, VideoFormat
from download_server.engine.jobs import hls, live_tail
from download_server.engine.jobs.crypto import iv_for_sequence
from download_server.engine.jobs.hls_playlist import RemoteSegment
from tests.download.engine.conftest import Harness
from tests.support.media import decoded_video_frames, encrypt, sha256


@pytest.mark.parametrize(
    ("fixture", "hashes_key"),
    [("hls_ts", "segment_sha256"), ("hls_fmp4", "segment_sha256"), ("hls_aes128", "plaintext_segment_sha256")],
)
async def test_media_playlists_reproduce_every_segment(
    backend_harness: Harness, manifest: dict[str, Any], fixture: str, hashes_key: str
) -> None:
    harness = backend_harness
    expected = manifest[fixture]
    task = await harness.create(expected["playlist"])
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert (done.segments_total, done.segments_done, done.segments_failed) == (6, 6, 0) == (expected["segments"], 6, 0)
    stored = harness.view()  # the storage directory, or what the bucket holds
    files = harness.segment_files(task, stored)
    assert [sha256(f) for f in files] == expected[hashes_key]
    assert [f.name for f in files] == [f"{i}.{'m4s' if fixture == 'hls_fmp4' else 'ts'}" for i in range(6)]
    if "init_sha256" in expected:
        assert sha256(stored.hls_dir(task.id) / "init_0.mp4") == expected["init_sha256"]
    local = stored.playlist_path(task.id)
    text = local.read_text()
    assert "#EXT-X-ENDLIST" in text and "EXT-X-KEY" not in text and "http" not in text
    assert decoded_video_frames(local) == expected["video_frames"]
    if harness.backend.remote:  # the bucket holds the recording: the work area let go of it
        assert not harness.storage.hls_dir(task.id).exists()

    video = harness.store.videos[task.id]
    assert (video.format, video.segment_count, video.file_path) == (
        VideoFormat.HLS,
        6,
        str(local.relative_to(stored.root)),
    )
    inits = list(stored.hls_dir(task.id).glob("init_*.mp4"))
    assert video.file_size == sum(f.stat().st_size for f in files + inits)
    assert video.duration_seconds == pytest.approx(6.0)
    segments = await harness.store.list_segments(task.id)
    assert all(s.status is SegmentStatus.DONE and s.attempts == 1 for s in segments)
    assert [s.sha256 for s in segments] == expected[hashes_key]


async def test_aes128_key_is_fetched_once(harness: Harness) -> None:
    task = await harness.create("hls_aes128/index.m3u8")
    await harness.run(task)
    assert harness.origin.requests["hls_aes128/key.bin"] == 1


async def test_master_playlist_downloads_the_highest_bandwidth_variant(
    harness: Harness, manifest: dict[str, Any]
) -> None:
    expected = manifest["hls_master"]
    task = await harness.create(expected["playlist"])
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED
    assert [sha256(f) for f in harness.segment_files(task)] == expected["segment_sha256_high"]
    assert not any(path.startswith("hls_master/low/seg") for path in harness.origin.requests)
    local = harness.storage.playlist_path(task.id)
    assert expected["highest_bandwidth_variant"] in local.read_text()  # which variant, recorded
    assert any(expected["highest_bandwidth_variant"] in e.message for e in harness.last_events)
    assert decoded_video_frames(local) == expected["video_frames_high"]


async def test_sample_aes_fails_with_one_clear_record_and_no_files(harness: Harness) -> None:
    text = (harness.origin.root / "hls_ts/index.m3u8").read_text()
    harness.origin.write(
        "drm/index.m3u8",
        text.replace(
            "#EXTINF",
            '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://key",KEYFORMAT="com.apple.streamingkeydelivery"\n#EXTINF',
            1,
        ).encode(),
    )
    task = await harness.create("drm/index.m3u8")
    done = await harness.run(task)

    assert done.status is TaskStatus.FAILED
    failures = await harness.store.task_failures(task.id)
    assert [(f.segment_index, f.error_type, f.status) for f in failures] == [
        (-1, "unsupported_encryption", FailureStatus.PENDING)
    ]
    assert "SAMPLE-AES" in failures[0].error_message
    assert not harness.storage.hls_dir(task.id).exists()
    assert task.id not in harness.store.videos


async def test_a_missing_playlist_fails_the_task(harness: Harness) -> None:
    task = await harness.create("nowhere/index.m3u8")
    done = await harness.run(task)
    failures = await harness.store.task_failures(task.id)
    assert done.status is TaskStatus.FAILED
    assert [(f.segment_index, f.http_status, f.attempts) for f in failures] == [(-1, 404, 1)]


@pytest.mark.parametrize("honour_range", [True, False])
async def test_byte_range_segments_of_one_file(harness: Harness, manifest: dict[str, Any], honour_range: bool) -> None:
    origin = harness.origin
    parts = [(origin.root / f"hls_ts/seg0{i}.ts").read_bytes() for i in range(6)]
    origin.write("ranged/all.ts", b"".join(parts))
    lines = ["#EXTM3U", "#EXT-X-VERSION:4", "#EXT-X-TARGETDURATION:1", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for i, part in enumerate(parts):
        # The first range names its offset; the others start where the previous one ended (implicit).
        lines += [
            "#EXTINF:1.0,",
            f"#EXT-X-BYTERANGE:{len(part)}@0" if i == 0 else f"#EXT-X-BYTERANGE:{len(part)}",
            "all.ts",
        ]
    origin.write("ranged/index.m3u8", "\n".join([*lines, "#EXT-X-ENDLIST", ""]).encode())
    if not honour_range:
        origin.ignore_range("ranged/all.ts")
    task = await harness.create("ranged/index.m3u8")
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED
    assert [sha256(f) for f in harness.segment_files(task)] == manifest["hls_ts"]["segment_sha256"]
    assert decoded_video_frames(harness.storage.playlist_path(task.id)) == manifest["hls_ts"]["video_frames"]


async def test_aes128_iv_defaults_to_the_media_sequence_number(harness: Harness, manifest: dict[str, Any]) -> None:
    origin, key = harness.origin, b"0123456789abcdef"
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:7", '#EXT-X-KEY:METHOD=AES-128,URI="k.bin"']
    for i in range(6):
        plain = (origin.root / f"hls_ts/seg0{i}.ts").read_bytes()
        origin.write(f"seqiv/s{i}.ts", encrypt(plain, key, iv_for_sequence(7 + i)))
        lines += ["#EXTINF:1.0,", f"s{i}.ts"]
    origin.write("seqiv/k.bin", key)
    origin.write("seqiv/index.m3u8", "\n".join([*lines, "#EXT-X-ENDLIST", ""]).encode())
    task = await harness.create("seqiv/index.m3u8")
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED
    assert [sha256(f) for f in harness.segment_files(task)] == manifest["hls_ts"]["segment_sha256"]


@pytest.mark.parametrize("fixture", ["hls_ts", "hls_fmp4", "hls_aes128"])
async def test_a_plan_merged_in_slices_is_the_same_plan(
    harness: Harness, manifest: dict[str, Any], fixture: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long first plan becomes rows a slice at a time (memory), its entries past the first chunk packed
    until then: numbering, keys and init sections carry over."""
    monkeypatch.setattr(hls, "PLAN_SLICE", 4)  # 6 segments: the parsed chunk of 2, then packed ones of 2
    monkeypatch.setattr(live_tail, "CHUNK", 2)
    unpacked: list[int] = []
    unpack = live_tail.unpack

    def counted(blob: bytes) -> list[RemoteSegment]:
        unpacked.append(len(blob))
        return unpack(blob)

    monkeypatch.setattr(live_tail, "unpack", counted)
    expected = manifest[fixture]
    task = await harness.create(expected["playlist"])
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert (done.segments_total, done.segments_done) == (6, 6)
    hashes = expected["plaintext_segment_sha256" if fixture == "hls_aes128" else "segment_sha256"]
    assert [sha256(f) for f in harness.segment_files(task)] == hashes
    assert decoded_video_frames(harness.storage.playlist_path(task.id)) == expected["video_frames"]
    assert len(unpacked) == 2
