"""One file over several connections (DOWNLOAD_RANGE_CONNECTIONS) from a real local origin: pieces at their
offsets, the sha256 of the whole, resume per piece after a failure, a pause or a crash, and the fallbacks."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from download_server.domain.models import ResourceType, Segment, TaskStatus, VideoFormat
from download_server.engine.files.layout import Storage, ranged_paths, temp_path
from download_server.engine.files.pieces import RangeState, WorkFile, load_state, save_state
from tests.download.engine.conftest import ENGINE, FAST, Harness
from tests.support.media import sha256
from tests.support.origin import Fault, Origin

PIECE = 64 * 1024
SIZE = 17 * PIECE + 12_345  # 18 pieces, the last one short
BIG = "big/film.mp4"
RANGED = replace(ENGINE, range_connections=4, range_min_part_bytes=PIECE)
_SPAN = re.compile(r"bytes=(\d+)-(\d+)")


@pytest.fixture
def data(origin: Origin) -> bytes:
    body = random.Random(17).randbytes(SIZE)
    origin.write(BIG, body)
    return body


@pytest.fixture
async def ranged(origin: Origin, storage: Storage) -> AsyncIterator[Harness]:
    engine = Harness(origin, storage, RANGED)
    yield engine
    await engine.scheduler.close()


def spans(headers: list[str | None]) -> list[tuple[int, int]]:
    """The (first, last) byte of each Range header (every one must be a closed byte range)."""
    found = []
    for header in headers:
        match = _SPAN.fullmatch(header or "")
        assert match is not None, header
        found.append((int(match.group(1)), int(match.group(2))))
    return found


def every_piece() -> list[tuple[int, int]]:
    return [(start, min(start + PIECE, SIZE) - 1) for start in range(0, SIZE, PIECE)]


def assert_no_scratch(final: Path) -> None:
    assert [path for path in (temp_path(final), *ranged_paths(temp_path(final))) if path.exists()] == []


async def test_pieces_arrive_over_four_connections_and_hash_as_the_whole(ranged: Harness, data: bytes) -> None:
    ranged.origin.add(BIG, Fault("slow", 1, delay=0.0))  # the first GET passes untouched
    first_piece = ranged.origin.gate(BIG)  # the first piece waits ...
    task = await ranged.create(BIG, ResourceType.MP4)
    await ranged.scheduler.start(task.id)
    await ranged.origin.wait_requests(BIG, 5)  # ... while three more are asked for at once
    first_piece.set()
    await ranged.until_stream_ends(task.id)
    done = await ranged.store.get_task(task.id)

    path = ranged.storage.mp4_path(task)
    expected = hashlib.sha256(data).hexdigest()
    assert done.status is TaskStatus.COMPLETED
    assert (sha256(path), path.stat().st_size) == (expected, SIZE)
    video = ranged.store.videos[task.id]
    assert (video.format, video.sha256, video.file_size) == (VideoFormat.MP4, expected, SIZE)
    assert (done.bytes_downloaded, done.bytes_total, done.progress) == (SIZE, SIZE, 1.0)
    headers = ranged.origin.range_headers[BIG]
    assert headers[0] is None  # the ordinary first GET, dropped after its headers said "ranges, N bytes"
    assert sorted(spans(headers[1:])) == every_piece()  # each piece asked for once, nothing else
    assert_no_scratch(path)


async def test_a_piece_cut_mid_way_resumes_from_where_it_stopped(ranged: Harness, data: bytes) -> None:
    ranged.origin.cut_range(BIG, 3 * PIECE)
    task = await ranged.create(BIG, ResourceType.MP4)
    done = await ranged.run(task)

    assert done.status is TaskStatus.COMPLETED
    assert sha256(ranged.storage.mp4_path(task)) == hashlib.sha256(data).hexdigest()
    asked = spans(ranged.origin.range_headers[BIG][1:])
    piece_end = 4 * PIECE - 1
    # The origin sent half of piece 3 and closed: the retry asked only for the other half.
    assert (3 * PIECE, piece_end) in asked and (3 * PIECE + PIECE // 2, piece_end) in asked
    assert len(asked) == len(every_piece()) + 1
    assert [f.status.value for f in await ranged.store.task_failures(task.id)] == []


async def test_an_origin_that_ignores_range_falls_back_to_one_connection(ranged: Harness, data: bytes) -> None:
    ranged.origin.ignore_range(BIG)
    task = await ranged.create(BIG, ResourceType.MP4)
    done = await ranged.run(task)

    path = ranged.storage.mp4_path(task)
    assert done.status is TaskStatus.COMPLETED
    assert sha256(path) == hashlib.sha256(data).hexdigest()
    headers = ranged.origin.range_headers[BIG]
    # First GET, piece requests answered 200 (dropped at their headers), then the whole file once.
    assert headers[0] is None and headers[-1] is None and headers.count(None) == 2
    assert 1 <= len(spans(headers[1:-1])) <= RANGED.range_connections
    assert_no_scratch(path)


@pytest.mark.parametrize("what_tells", ["etag", "length"])
async def test_a_file_that_changes_mid_download_is_restarted_cleanly(
    ranged: Harness, data: bytes, what_tells: str
) -> None:
    ranged.origin.etags[BIG] = '"v1"'
    ranged.origin.slow(BIG, delay=0.05)  # every request waits a little: the download is under way for a while
    task = await ranged.create(BIG, ResourceType.MP4)
    await ranged.start_until(task, lambda event: event.bytes_downloaded > 0)
    if what_tells == "etag":  # same length: only the ETag tells
        changed = random.Random(18).randbytes(SIZE)
        ranged.origin.etags[BIG] = '"v2"'
    else:  # same ETag (a careless origin): the length in Content-Range tells
        changed = random.Random(18).randbytes(SIZE + PIECE // 2)
    ranged.origin.write(BIG, changed)
    await ranged.until_stream_ends(task.id)
    done = await ranged.store.get_task(task.id)

    path = ranged.storage.mp4_path(task)
    assert done.status is TaskStatus.COMPLETED
    # Every byte is from the new version: nothing fetched under "v1" was kept.
    assert sha256(path) == hashlib.sha256(changed).hexdigest() == ranged.store.videos[task.id].sha256
    assert ranged.origin.range_headers[BIG].count(None) == 2  # a fresh first GET planned the new version
    assert_no_scratch(path)


async def test_pause_then_resume_fetches_only_what_each_piece_misses(ranged: Harness, data: bytes) -> None:
    ranged.origin.slow(BIG, delay=0.05)
    task = await ranged.create(BIG, ResourceType.MP4)
    await ranged.start_until(task, lambda event: event.bytes_downloaded >= SIZE // 3)
    await ranged.scheduler.pause(task.id)

    final = ranged.storage.mp4_path(task)
    work, sidecar = ranged_paths(temp_path(final))
    state = load_state(sidecar, work)
    assert state is not None and state.total == SIZE
    held = state.done_bytes()
    assert SIZE // 3 <= held < SIZE
    before = len(ranged.origin.range_headers[BIG])
    ranged.origin.heal(BIG)
    done = await ranged.run(task, action="resume")

    assert done.status is TaskStatus.COMPLETED
    assert sha256(final) == hashlib.sha256(data).hexdigest()
    resumed = spans(ranged.origin.range_headers[BIG][before:])  # no plain GET: the saved plan goes on
    assert sum(last - first + 1 for first, last in resumed) == SIZE - held
    assert_no_scratch(final)


async def test_a_restart_resumes_each_piece_from_its_saved_offset(
    origin: Origin, storage: Storage, data: bytes
) -> None:
    # The state a killed process leaves: task PROCESSING, segment PENDING, work file and sidecar.
    harness = Harness(origin, storage, RANGED)
    try:
        task = await harness.create(BIG, ResourceType.MP4)
        task.status = TaskStatus.PROCESSING
        await harness.store.save_task(task)
        await harness.store.add_segments(task.id, [Segment(task.id, 0, task.resource_url)])
        final = storage.mp4_path(task)
        work, sidecar = ranged_paths(temp_path(final))
        state = RangeState.plan(task.resource_url, SIZE, PIECE, content_type="video/mp4")
        state.pieces[0].done, state.pieces[1].done, state.pieces[5].done = PIECE, 1000, 5000
        held = bytearray(SIZE)  # zeros wherever the state says nothing is held: those must be fetched
        for piece in state.pieces:
            held[piece.start : piece.start + piece.done] = data[piece.start : piece.start + piece.done]
        work.parent.mkdir(parents=True)
        work.write_bytes(bytes(held))
        save_state(sidecar, state)

        with harness.broker.subscribe(task_id=task.id) as sub:
            assert await harness.scheduler.recover() == [task.id]
            async for event in sub:
                if event.status.is_terminal:
                    break
        done = await harness.store.get_task(task.id)
        assert done.status is TaskStatus.COMPLETED
        assert sha256(final) == hashlib.sha256(data).hexdigest()
        asked = sorted(spans(origin.range_headers[BIG]))
        assert (0, PIECE - 1) not in asked
        assert (PIECE + 1000, 2 * PIECE - 1) in asked and (5 * PIECE + 5000, 6 * PIECE - 1) in asked
        assert sum(last - first + 1 for first, last in asked) == SIZE - PIECE - 1000 - 5000
        assert_no_scratch(final)
    finally:
        await harness.scheduler.close()


async def test_one_connection_is_the_single_stream_of_before(origin: Origin, storage: Storage, data: bytes) -> None:
    harness = Harness(origin, storage, replace(RANGED, range_connections=1))
    try:
        task = await harness.create(BIG, ResourceType.MP4)
        done = await harness.run(task)
        assert done.status is TaskStatus.COMPLETED
        assert sha256(storage.mp4_path(task)) == hashlib.sha256(data).hexdigest()
        assert origin.range_headers[BIG] == [None]
    finally:
        await harness.scheduler.close()


async def test_a_declared_size_over_the_file_limit_fails_before_any_piece(
    origin: Origin, storage: Storage, data: bytes
) -> None:
    small_limit = replace(RANGED, fetch=replace(FAST, max_file_bytes=SIZE - 1))
    harness = Harness(origin, storage, small_limit)
    try:
        task = await harness.create(BIG, ResourceType.MP4)
        done = await harness.run(task)
        [failure] = await harness.store.task_failures(task.id)
        assert (done.status, failure.error_type) == (TaskStatus.FAILED, "too_large")
        assert origin.range_headers[BIG] == [None]
    finally:
        await harness.scheduler.close()


async def test_a_big_image_is_fetched_in_pieces_under_its_type(ranged: Harness) -> None:
    body = random.Random(5).randbytes(SIZE)
    ranged.origin.write("big/poster.png", body)
    task = await ranged.create("big/poster.png", ResourceType.IMAGE)
    done = await ranged.run(task)

    saved = ranged.storage.image_path(task, "png")
    assert done.status is TaskStatus.COMPLETED
    assert sha256(saved) == hashlib.sha256(body).hexdigest() == ranged.store.videos[task.id].sha256
    assert [path.name for path in saved.parent.iterdir()] == [saved.name]
    assert sorted(spans(ranged.origin.range_headers["big/poster.png"][1:])) == every_piece()


def test_a_damaged_sidecar_is_not_trusted(tmp_path: Path) -> None:
    state = RangeState.plan("http://o/x.mp4", 10 * PIECE, PIECE, etag='"e"')
    state.pieces[2].done = 7
    again = RangeState.from_json(state.to_json())
    assert again is not None and again.pieces == state.pieces and again.etag == '"e"'
    assert RangeState.from_json(state.to_json()[:-5]) is None
    assert RangeState.from_json(state.to_json().replace('"done":[', '"done":[99999999,')) is None
    work, sidecar = tmp_path / "w.part", tmp_path / "s.part"
    save_state(sidecar, state)
    work.write_bytes(b"short")
    assert load_state(sidecar, work) is None  # the work file is not the planned size


def test_the_prefix_stops_at_the_first_piece_not_complete() -> None:
    state = RangeState.plan("u", 3 * PIECE + 10, PIECE)
    state.pieces[0].done, state.pieces[1].done, state.pieces[2].done = PIECE, 100, PIECE
    assert state.prefix() == PIECE + 100
    assert not state.complete()


async def test_deleting_the_task_files_removes_a_stopped_ranged_download(ranged: Harness, data: bytes) -> None:
    ranged.origin.slow(BIG, delay=0.05)
    task = await ranged.create(BIG, ResourceType.MP4)
    await ranged.start_until(task, lambda event: event.bytes_downloaded > 0)
    await ranged.scheduler.pause(task.id)
    scratch = ranged_paths(temp_path(ranged.storage.mp4_path(task)))
    assert all(path.exists() for path in scratch)

    ranged.storage.delete_files(task)
    assert not any(path.exists() for path in scratch)


async def test_a_piece_redirected_somewhere_refused_fails_under_the_url_policy(ranged: Harness, data: bytes) -> None:
    ranged.origin.add(BIG, Fault("slow", 1, delay=0.0))  # the first GET offers ranges ...
    ranged.origin.redirect(BIG, "ftp://example.com/film.mp4")  # ... then every piece is sent elsewhere
    task = await ranged.create(BIG, ResourceType.MP4)
    done = await ranged.run(task)

    [failure] = await ranged.store.task_failures(task.id)
    assert (done.status, failure.segment_index, failure.error_type) == (TaskStatus.FAILED, -1, "url_refused")
    assert not ranged.storage.mp4_path(task).exists()


def test_the_work_file_takes_chunks_at_their_offset(tmp_path: Path) -> None:
    work = WorkFile(tmp_path / "w.part")
    work.open(100, fresh=True)
    try:
        work.pwritev(10, [b"abc", b"", b"defg", bytes(range(5))])
        work.pwritev(95, [b"12345"])
    finally:
        work.close()
    body = (tmp_path / "w.part").read_bytes()
    assert len(body) == 100 and body[10:22] == b"abcdefg" + bytes(range(5)) and body[95:] == b"12345"
    assert body[:10] == bytes(10) and body[22:95] == bytes(73)


async def test_pieces_stop_being_asked_for_once_the_user_quota_is_crossed(
    origin: Origin, storage: Storage, data: bytes
) -> None:
    # A quota a quarter of the way into the file (two connections: pieces of 70,404 bytes; the 4th crosses it).
    quota = 4 * PIECE - 1
    harness = Harness(origin, storage, replace(RANGED, range_connections=2, user_quota_bytes=quota))
    try:
        task = await harness.create(BIG, ResourceType.MP4)
        done = await harness.run(task)
        [failure] = await harness.store.task_failures(task.id)
        assert (done.status, failure.error_type) == (TaskStatus.FAILED, "quota_exceeded")
        asked = spans(origin.range_headers[BIG][1:])
        # Each piece request checks the quota first: with two connections at most one piece more is in
        # flight when it is crossed, and nothing after that is asked for.
        assert len(asked) <= quota // PIECE + 2 < len(every_piece())
        assert not storage.mp4_path(task).exists()
    finally:
        await harness.scheduler.close()
