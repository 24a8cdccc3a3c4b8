"""The scheduler end to end against the local origin: slots and queue, pause/resume/cancel/delete, failures
and retries that fetch only what failed, a misbehaving origin, live playlists, crash recovery, URL policy."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from download_server.domain.models import FailureStatus, ResourceType, SegmentStatus, TaskStatus
from download_server.engine.files.layout import Storage
from mediadl_common.errors import FailedPrecondition
from tests.download.engine.conftest import ENGINE, Harness
from tests.support.media import decoded_video_frames, sha256
from tests.support.origin import Origin
from tests.support.replicas import recover_to_the_end
from tests.support.s3 import StorageBackend

TS = "hls_ts/index.m3u8"


def seg(i: int) -> str:
    return f"hls_ts/seg0{i}.ts"


async def test_a_task_never_runs_twice(harness: Harness) -> None:
    task = await harness.create(TS)
    with harness.broker.subscribe(task_id=task.id) as sub:
        await asyncio.gather(*(harness.scheduler.start(task.id) for _ in range(3)))
        await harness.scheduler.start(task.id)  # StartTask on a running task attaches, nothing more
        async for event in sub:
            if event.status.is_terminal:
                break
    assert all(harness.origin.requests[seg(i)] == 1 for i in range(6))
    with pytest.raises(FailedPrecondition):
        await harness.scheduler.start(task.id)  # COMPLETED cannot start again


async def test_beyond_max_active_tasks_downloads_wait_in_order(origin: Origin, storage: Storage) -> None:
    harness = Harness(origin, storage, replace(ENGINE, max_active_tasks=1))
    try:
        hold = origin.gate(seg(5))
        first, second, third = [await harness.create(p) for p in (TS, "hls_fmp4/index.m3u8", "hls_master/master.m3u8")]
        running: set[str] = set()
        most = 0
        with harness.broker.subscribe(user_id="user-1") as everything:
            for task in (first, second, third):
                await harness.scheduler.start(task.id)
            assert [(await harness.store.get_task(t.id)).status for t in (second, third)] == [TaskStatus.PENDING] * 2
            await harness.scheduler.cancel(third.id)  # a queued task can be cancelled; it never runs
            hold.set()
            finished = set()
            async for event in everything:
                if event.status is TaskStatus.PROCESSING:
                    running.add(event.task_id)
                else:
                    running.discard(event.task_id)
                most = max(most, len(running))
                if event.task_id == second.id and event.status is TaskStatus.PENDING:
                    assert "queued: position 1 of " in event.message
                if event.status.is_terminal:
                    finished.add(event.task_id)
                if {first.id, second.id} <= finished:
                    break
        assert most == 1
        statuses = [(await harness.store.get_task(t.id)).status for t in (first, second, third)]
        assert statuses == [TaskStatus.COMPLETED, TaskStatus.COMPLETED, TaskStatus.CANCELLED]
        assert not any(path.startswith("hls_master/") for path in origin.requests)
    finally:
        await harness.scheduler.close()


async def test_pause_then_resume_fetches_nothing_twice(backend_harness: Harness, manifest: dict[str, Any]) -> None:
    harness = backend_harness
    gates = [harness.origin.gate(seg(i)) for i in (3, 4, 5)]
    task = await harness.create(TS)
    await harness.start_until(task, lambda e: e.segments_done == 3)
    await harness.scheduler.pause(task.id)

    paused = await harness.store.get_task(task.id)
    assert (paused.status, paused.segments_done) == (TaskStatus.PAUSED, 3)
    stored = await harness.store.list_segments(task.id)
    assert [s.status for s in stored] == [SegmentStatus.DONE] * 3 + [SegmentStatus.PENDING] * 3
    with pytest.raises(FailedPrecondition):
        await harness.scheduler.pause(task.id)
    for gate in gates:
        gate.set()
    done = await harness.run(task, action="resume")

    assert done.status is TaskStatus.COMPLETED
    assert [harness.origin.requests[seg(i)] for i in range(6)] == [1, 1, 1, 2, 2, 2]
    assert [sha256(f) for f in harness.segment_files(task, harness.view())] == manifest["hls_ts"]["segment_sha256"]


async def test_cancel_keeps_finished_segments_for_a_later_start(harness: Harness) -> None:
    gates = [harness.origin.gate(seg(i)) for i in (3, 4, 5)]
    task = await harness.create(TS)
    await harness.start_until(task, lambda e: e.segments_done == 3)
    await harness.scheduler.cancel(task.id)
    cancelled = await harness.store.get_task(task.id)
    assert cancelled.status is TaskStatus.CANCELLED and cancelled.complete_time is not None
    for gate in gates:
        gate.set()

    done = await harness.run(task)  # CANCELLED may be started again
    assert done.status is TaskStatus.COMPLETED
    assert [harness.origin.requests[seg(i)] for i in range(3)] == [1, 1, 1]


async def test_delete_while_running_stops_the_download_and_ends_watchers(harness: Harness) -> None:
    gates = [harness.origin.gate(seg(i)) for i in (3, 4, 5)]
    task = await harness.create(TS)
    await harness.start_until(task, lambda e: e.segments_done == 3)
    watcher = harness.events(task.id)
    await anext(watcher)
    await harness.scheduler.delete(task.id, task.user_id)
    assert [e.message async for e in watcher] == ["deleted"]
    assert not harness.scheduler.is_active(task.id)
    for gate in gates:
        gate.set()
    for i in (3, 4, 5):  # every held request is over: answered, or dropped by the stopped run
        await asyncio.wait_for(harness.origin.wait_settled(seg(i)), timeout=30)
    assert [harness.origin.requests[seg(i)] for i in (3, 4, 5)] == [1, 1, 1]
    assert [harness.origin.completed[seg(i)] for i in (3, 4, 5)] == [0, 0, 0]
    assert [f.name for f in harness.segment_files(task)] == ["0.ts", "1.ts", "2.ts"]  # the engine keeps files


async def test_permanent_404s_then_retry_fetches_only_what_failed(
    backend_harness: Harness, manifest: dict[str, Any]
) -> None:
    harness = backend_harness
    for i in (1, 4):
        harness.origin.fail(seg(i), status=404)
    task = await harness.create(TS)
    done = await harness.run(task)

    assert (done.status, done.segments_done, done.segments_failed) == (TaskStatus.PARTIAL_COMPLETED, 4, 2)
    failures = await harness.store.task_failures(task.id)
    assert [(f.segment_index, f.http_status, f.error_type, f.attempts) for f in failures] == [
        (1, 404, "http_error", 1),
        (4, 404, "http_error", 1),
    ]
    local = harness.view().playlist_path(task.id)
    assert local.read_text().count("#EXT-X-DISCONTINUITY") == 2
    assert decoded_video_frames(local) == 40
    assert harness.store.videos[task.id].segment_count == 4

    harness.origin.heal()
    done = await harness.run(task, action="retry")
    assert (done.status, done.retry_count, done.segments_failed) == (TaskStatus.COMPLETED, 1, 0)
    assert [harness.origin.requests[seg(i)] for i in range(6)] == [1, 2, 1, 1, 2, 1]
    assert {f.status for f in await harness.store.task_failures(task.id)} == {FailureStatus.RESOLVED}
    assert len(await harness.store.task_failures(task.id)) == 2
    stored = harness.view()
    assert "DISCONTINUITY" not in stored.playlist_path(task.id).read_text()
    assert harness.store.videos[task.id].segment_count == 6
    assert [sha256(f) for f in harness.segment_files(task, stored)] == manifest["hls_ts"]["segment_sha256"]


async def test_retry_failure_fetches_one_segment_and_the_last_one_completes_the_task(
    backend_harness: Harness, manifest: dict[str, Any]
) -> None:
    harness = backend_harness
    for i in (0, 2, 5):
        harness.origin.fail(seg(i), status=410)
    task = await harness.create(TS)
    await harness.run(task)
    first, second, third = await harness.store.task_failures(task.id)
    harness.origin.heal()

    abandoned = replace(third, status=FailureStatus.ABANDONED)
    await harness.store.save_failure(abandoned)
    assert (await harness.scheduler.retry_failure(first.id)).status is FailureStatus.RESOLVED
    assert (await harness.store.get_task(task.id)).status is TaskStatus.PARTIAL_COMPLETED
    with pytest.raises(FailedPrecondition):
        await harness.scheduler.retry_failure(first.id)  # resolved already
    assert (await harness.scheduler.retry_failure(second.id)).status is FailureStatus.RESOLVED
    # The abandoned one stays a gap: the task stays PARTIAL_COMPLETED and there is nothing left to retry.
    assert (await harness.store.get_task(task.id)).status is TaskStatus.PARTIAL_COMPLETED
    with pytest.raises(FailedPrecondition):
        await harness.scheduler.retry(task.id)
    assert [harness.origin.requests[seg(i)] for i in range(6)] == [2, 1, 2, 1, 1, 1]

    await harness.store.save_failure(replace(third, status=FailureStatus.PENDING))
    assert (await harness.scheduler.retry_failure(third.id)).status is FailureStatus.RESOLVED
    done = await harness.store.get_task(task.id)
    assert (done.status, done.progress) == (TaskStatus.COMPLETED, 1.0)
    stored = harness.view()
    assert "DISCONTINUITY" not in stored.playlist_path(task.id).read_text()
    assert [sha256(f) for f in harness.segment_files(task, stored)] == manifest["hls_ts"]["segment_sha256"]


@pytest.mark.parametrize(
    ("fixture", "kind"), [("hls_ts", ResourceType.HLS), ("hls_aes128", ResourceType.HLS), ("mp4", ResourceType.MP4)]
)
async def test_a_misbehaving_origin_still_gives_identical_bytes(
    harness: Harness, manifest: dict[str, Any], fixture: str, kind: ResourceType
) -> None:
    expected = manifest[fixture]
    first_path = expected.get("file") or f"{fixture}/seg00.ts"
    harness.origin.truncate(first_path)  # at least one fault, whatever the dice say
    harness.origin.chaos(prefix=f"{fixture}/", rate=0.6, seed=20260517)
    task = await harness.create(expected.get("playlist") or expected["file"], kind)
    done = await harness.run(task)

    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert await harness.store.task_failures(task.id) == []
    served = sum(count for path, count in harness.origin.requests.items() if path.startswith(fixture))
    if kind is ResourceType.MP4:
        assert sha256(harness.storage.mp4_path(task)) == expected["sha256"]
        assert served > 1
    else:
        hashes = expected.get("segment_sha256") or expected["plaintext_segment_sha256"]
        assert [sha256(f) for f in harness.segment_files(task)] == hashes
        assert served > 7  # faults really happened (6 segments + playlist without them)


def live_version(first: int, last: int, *, ended: bool) -> bytes:
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:1", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    for i in range(first, last + 1):
        lines += ["#EXTINF:1.0,", f"../hls_ts/seg0{i}.ts"]
    return "\n".join([*lines, *(["#EXT-X-ENDLIST"] if ended else []), ""]).encode()


async def test_a_live_playlist_that_grows_and_then_ends(harness: Harness, manifest: dict[str, Any]) -> None:
    harness.origin.sequence(
        "live/index.m3u8",
        [
            live_version(0, 1, ended=False),
            live_version(0, 3, ended=False),
            live_version(0, 3, ended=False),  # unchanged for one poll
            live_version(2, 5, ended=False),  # the window slides
            live_version(2, 5, ended=True),
        ],
    )
    task = await harness.create("live/index.m3u8")
    done = await harness.run(task)

    assert (done.status, done.segments_total) == (TaskStatus.COMPLETED, 6)
    assert [harness.origin.requests[seg(i)] for i in range(6)] == [1] * 6
    assert harness.origin.requests["live/index.m3u8"] == 5
    assert [sha256(f) for f in harness.segment_files(task)] == manifest["hls_ts"]["segment_sha256"]
    local = harness.storage.playlist_path(task.id)
    assert "#EXT-X-ENDLIST" in local.read_text()
    assert decoded_video_frames(local) == manifest["hls_ts"]["video_frames"]


async def test_a_live_recording_can_be_paused_and_resumed(harness: Harness) -> None:
    harness.origin.sequence("live/index.m3u8", [live_version(0, 3, ended=False)])
    task = await harness.create("live/index.m3u8")
    await harness.start_until(task, lambda e: e.segments_done == 4)
    await harness.scheduler.pause(task.id)
    assert (await harness.store.get_task(task.id)).status is TaskStatus.PAUSED

    harness.origin.sequence("live/index.m3u8", [live_version(3, 5, ended=True)])
    done = await harness.run(task, action="resume")
    assert (done.status, done.segments_total) == (TaskStatus.COMPLETED, 6)
    assert [harness.origin.requests[seg(i)] for i in range(6)] == [1] * 6


async def test_recover_resumes_from_persisted_segments(
    origin: Origin, storage: Storage, manifest: dict[str, Any], storage_backend: StorageBackend
) -> None:
    first = Harness(origin, storage, ENGINE, backend=storage_backend)
    task = await first.create(TS)
    await first.run(task)
    await first.scheduler.close()

    # What a killed process leaves: PROCESSING; 0 and 2 DONE; 1 DONE but its file lost; 3 finished on disk
    # but not yet flushed (PENDING); 4 and 5 never fetched.
    store = first.store
    stored = await store.get_task(task.id)
    stored.status = TaskStatus.PROCESSING
    await store.save_task(stored)
    segments = await store.list_segments(task.id)
    for s in segments[3:]:
        s.status, s.bytes, s.sha256 = SegmentStatus.PENDING, 0, ""
    await store.save_progress(stored, segments)
    if storage_backend.remote:
        for i in (1, 4, 5):  # the objects are what counts: lost, or never published
            storage_backend.delete(f"hls/{task.id}/ts/{i}.ts")
        # Another replica resumes it, with a work directory of its own that is empty: nothing is shared but
        # the database and the bucket.
        storage = Storage(storage.root.parent / "replica-b")
    else:
        files = first.segment_files(task)
        for i in (1, 4, 5):
            files[i].unlink()
    origin.requests.clear()

    second = Harness(origin, storage, ENGINE, store=store, backend=storage_backend)
    await recover_to_the_end(second, task.id)
    done = await store.get_task(task.id)
    assert done.status is TaskStatus.COMPLETED
    assert [origin.requests[seg(i)] for i in range(6)] == [0, 1, 0, 0, 1, 1]
    assert [sha256(f) for f in second.segment_files(task, second.view())] == manifest["hls_ts"]["segment_sha256"]
    assert [s.sha256 for s in await store.list_segments(task.id)] == manifest["hls_ts"]["segment_sha256"]


async def test_with_the_policy_on_a_loopback_origin_is_refused(origin: Origin, storage: Storage) -> None:
    harness = Harness(origin, storage, replace(ENGINE, allow_private_networks=False))
    try:
        task = await harness.create(TS)
        done = await harness.run(task)
    finally:
        await harness.scheduler.close()
    [failure] = await harness.store.task_failures(task.id)
    assert (done.status, failure.segment_index, failure.error_type) == (TaskStatus.FAILED, -1, "url_refused")
    assert sum(origin.requests.values()) == 0


async def test_actions_from_the_wrong_state_are_refused(harness: Harness) -> None:
    task = await harness.create(TS)
    for action in ("pause", "resume", "retry"):
        with pytest.raises(FailedPrecondition):
            await getattr(harness.scheduler, action)(task.id)
    assert (await harness.store.get_task(task.id)).status is TaskStatus.PENDING
