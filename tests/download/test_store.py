"""The SQL persistence on SQLite and PostgreSQL: SqlTaskStore honours the engine's TaskStore contract (every
method one transaction), and the unit of work's repositories do what the use cases ask in one transaction."""

from __future__ import annotations

import functools
from collections.abc import Awaitable

import pytest

from download_server.adapters.leases import SqlLeases
from download_server.adapters.store import SqlTaskStore
from download_server.adapters.unit_of_work import SqlTransactions
from download_server.domain import leases as decisions
from download_server.domain.leases import Outcome
from download_server.domain.listing import Cursor, Ordering, Page, SortField, TaskQuery
from download_server.domain.models import (
    FailureStatus,
    ResourceType,
    SegmentStatus,
    Task,
    TaskStatus,
    Video,
    VideoFormat,
)
from download_server.domain.repositories import UnitOfWork
from mediadl_common.errors import AlreadyExists, FailedPrecondition, NotFound
from tests.download.helpers import at, make_failure, make_segment, make_task, make_video, new_id

ALICE, BOB = "user-alice", "user-bob"


async def test_task_round_trip_keeps_every_field(store: SqlTaskStore) -> None:
    task = make_task(
        ALICE,
        resource_type=ResourceType.MP4,
        status=TaskStatus.PARTIAL_COMPLETED,
        progress=0.75,
        bytes_downloaded=3_000_000_000,
        bytes_total=4_000_000_000,
        segments_total=400,
        segments_done=300,
        segments_failed=100,
        retry_count=2,
        last_error="segment 7: HTTP 404",
        liveroom_title="Ünïcode title ✓",
        create_time=at(0),
        update_time=at(1.5),
        complete_time=at(2.000001),
    )
    await store.save_task(task)
    assert await store.get_task(task.id) == task
    assert await store.get_task(task.id, ALICE) == task

    task.status, task.complete_time, task.liveroom_title = TaskStatus.PENDING, None, "renamed"
    await store.save_task(task)
    loaded = await store.get_task(task.id)
    assert loaded == task
    assert loaded.create_time.tzinfo is not None and loaded.create_time.utcoffset() == at(0).utcoffset()


async def test_another_users_task_is_reported_like_a_missing_one(store: SqlTaskStore) -> None:
    task = make_task(ALICE)
    await store.save_task(task)
    with pytest.raises(NotFound) as foreign:
        await store.get_task(task.id, BOB)
    missing_id = new_id()
    with pytest.raises(NotFound) as missing:
        await store.get_task(missing_id)
    assert foreign.value.message == f"task {task.id} not found"
    assert missing.value.message == f"task {missing_id} not found"
    assert foreign.value.reason == missing.value.reason


async def test_tasks_with_status(store: SqlTaskStore) -> None:
    tasks = {status: make_task(ALICE, status=status, create_time=at(i)) for i, status in enumerate(TaskStatus)}
    for task in tasks.values():
        await store.save_task(task)
    found = await store.tasks_with_status([TaskStatus.PROCESSING, TaskStatus.PAUSED])
    assert [t.id for t in found] == [tasks[TaskStatus.PROCESSING].id, tasks[TaskStatus.PAUSED].id]
    assert await store.tasks_with_status([]) == []


async def test_segments_add_list_delete(store: SqlTaskStore, tx: SqlTransactions) -> None:
    task = make_task(ALICE)
    other = make_task(ALICE)
    await store.save_task(task)
    await store.save_task(other)
    segments = [
        make_segment(task.id, 2, duration=4.004, discontinuity=True),
        make_segment(
            task.id,
            0,
            byterange_offset=0,
            byterange_length=5_000_000_000,
            key_uri="https://keys.example.com/k1",
            key_iv="0x" + "ab" * 16,
            init_uri="https://cdn.example.com/init.mp4",
        ),
        make_segment(task.id, 1, status=SegmentStatus.DONE, bytes=188_000, attempts=2, sha256="f" * 64),
    ]
    await store.add_segments(task.id, segments)
    await store.add_segments(other.id, [make_segment(other.id, 0)])
    assert await store.list_segments(task.id) == sorted(segments, key=lambda s: s.index)

    with pytest.raises(AlreadyExists):
        await store.add_segments(task.id, [make_segment(task.id, 5), make_segment(task.id, 1)])
    assert [s.index for s in await store.list_segments(task.id)] == [0, 1, 2]  # the failed batch left nothing
    with pytest.raises(NotFound):
        await store.add_segments(new_id(), [make_segment("x", 0)])

    await tx.run(lambda uow: uow.segments.remove_all(task.id))
    assert await store.list_segments(task.id) == []
    assert len(await store.list_segments(other.id)) == 1


async def test_save_progress_writes_counters_and_segments_but_never_the_status(store: SqlTaskStore) -> None:
    task = make_task(ALICE, status=TaskStatus.PROCESSING, create_time=at(0), update_time=at(0))
    await store.save_task(task)
    await store.add_segments(task.id, [make_segment(task.id, i) for i in range(3)])
    # The user pauses while the engine holds a stale copy that still says PROCESSING.
    paused = await store.get_task(task.id)
    paused.status = TaskStatus.PAUSED
    await store.save_task(paused)

    task.segments_total, task.segments_done, task.bytes_downloaded, task.update_time = 4, 2, 999, at(5)
    task.recompute_progress()
    done = [make_segment(task.id, i, status=SegmentStatus.DONE, bytes=100 + i, attempts=1) for i in (0, 1)]
    new = make_segment(task.id, 3, status=SegmentStatus.FAILED, attempts=3)
    await store.save_progress(task, [*done, new])

    loaded = await store.get_task(task.id)
    assert loaded.status is TaskStatus.PAUSED
    assert (loaded.segments_total, loaded.segments_done, loaded.bytes_downloaded) == (4, 2, 999)
    assert loaded.progress == pytest.approx(0.5)
    assert loaded.update_time == at(5)
    stored = await store.list_segments(task.id)
    assert [(s.index, s.status, s.bytes) for s in stored] == [
        (0, SegmentStatus.DONE, 100),
        (1, SegmentStatus.DONE, 101),
        (2, SegmentStatus.PENDING, 0),
        (3, SegmentStatus.FAILED, 0),
    ]


async def test_save_progress_of_many_segments_updates_and_inserts_across_in_list_chunks(store: SqlTaskStore) -> None:
    # Existence is looked up in IN lists of 500: 1,200 rows cross two chunk borders, stored and new mixed.
    task = make_task(ALICE, status=TaskStatus.PROCESSING)
    await store.save_task(task)
    await store.add_segments(task.id, [make_segment(task.id, i) for i in range(0, 1200, 2)])
    changed = [
        make_segment(task.id, i, status=SegmentStatus.DONE, bytes=i + 1, attempts=1, sha256=f"{i:064x}")
        for i in range(1200)
    ]
    await store.save_progress(task, changed)

    stored = await store.list_segments(task.id)
    assert [(s.index, s.status, s.bytes, s.sha256) for s in stored] == [
        (i, SegmentStatus.DONE, i + 1, f"{i:064x}") for i in range(1200)
    ]


async def test_pending_segments_are_read_a_slice_at_a_time_after_an_index(store: SqlTaskStore) -> None:
    task, other = make_task(ALICE, status=TaskStatus.PROCESSING), make_task(ALICE)
    await store.save_task(task)
    await store.save_task(other)
    statuses = {2: SegmentStatus.DONE, 5: SegmentStatus.FAILED, 6: SegmentStatus.DONE}
    await store.add_segments(
        task.id, [make_segment(task.id, i, status=statuses.get(i, SegmentStatus.PENDING)) for i in range(10)]
    )
    await store.add_segments(other.id, [make_segment(other.id, i) for i in range(10)])

    first = await store.pending_segments(task.id, -1, 3)
    rest = await store.pending_segments(task.id, first[-1].index, 10)

    assert [s.index for s in first] == [0, 1, 3]
    assert [s.index for s in rest] == [4, 7, 8, 9]
    assert all(s.task_id == task.id and s.status is SegmentStatus.PENDING for s in first + rest)
    assert await store.pending_segments(task.id, 9, 10) == []


async def test_failures(store: SqlTaskStore) -> None:
    task = make_task(ALICE)
    await store.save_task(task)
    first = await store.add_failure(make_failure(task.id, segment_index=-1, http_status=0, create_time=at(0)))
    second = await store.add_failure(make_failure(task.id, segment_index=7, create_time=at(1)))
    assert await store.get_failure(first.id) == first
    assert await store.get_failure(first.id, ALICE) == first
    with pytest.raises(NotFound, match=f"failure {first.id} not found"):
        await store.get_failure(first.id, BOB)
    with pytest.raises(NotFound):
        await store.add_failure(make_failure(new_id()))

    second.status, second.attempts, second.update_time = FailureStatus.RESOLVED, 4, at(9)
    await store.save_failure(second)
    assert await store.get_failure(second.id) == second

    assert [f.id for f in await store.task_failures(task.id)] == [first.id, second.id]
    assert [f.id for f in await store.task_failures(task.id, [FailureStatus.RESOLVED])] == [second.id]
    assert await store.task_failures(task.id, [FailureStatus.ABANDONED]) == []


async def test_save_video_inserts_then_replaces_the_tasks_one_record(store: SqlTaskStore, tx: SqlTransactions) -> None:
    def newest(video_id: str, user_id: str) -> Awaitable[Video]:
        return tx.run(lambda uow: uow.videos.newest(video_id, user_id))

    task = make_task(ALICE)
    await store.save_task(task)
    first = await store.save_video(make_video(task, create_time=at(0)))
    assert first == await newest(task.video_id, ALICE)
    replacement = make_video(task, file_size=99, format=VideoFormat.MP4, segment_count=3, sha256="a" * 64)
    stored = await store.save_video(replacement)
    assert stored.id == first.id  # one record per task, same identity
    assert (stored.file_size, stored.format, stored.segment_count) == (99, VideoFormat.MP4, 3)
    assert await newest(task.video_id, ALICE) == stored
    with pytest.raises(NotFound, match="video"):
        await newest(task.video_id, BOB)
    with pytest.raises(NotFound):
        await store.save_video(make_video(make_task(ALICE)))


async def test_delete_task_takes_segments_failures_and_video_with_it(store: SqlTaskStore, tx: SqlTransactions) -> None:
    leases = SqlLeases(tx)

    doomed, kept = make_task(ALICE), make_task(ALICE)
    for task in (doomed, kept):
        await store.save_task(task)
        await store.add_segments(task.id, [make_segment(task.id, 0)])
        await store.add_failure(make_failure(task.id))
        await store.save_video(make_video(task))
    failure = (await store.task_failures(doomed.id))[0]

    with pytest.raises(NotFound):
        await leases.remove(doomed.id, BOB, decisions.delete("replica-a"))
    decision, deleted = await leases.remove(doomed.id, ALICE, decisions.delete("replica-a"))
    assert decision.outcome is Outcome.REMOVE
    assert deleted is not None and deleted.task.id == doomed.id
    assert deleted.video is not None and deleted.video.task_id == doomed.id

    with pytest.raises(NotFound):
        await store.get_task(doomed.id)
    with pytest.raises(NotFound):
        await store.get_failure(failure.id)
    with pytest.raises(NotFound):
        await tx.run(lambda uow: uow.videos.newest(doomed.video_id, ALICE))
    assert await store.list_segments(doomed.id) == []
    assert len(await store.list_segments(kept.id)) == 1
    assert len(await store.task_failures(kept.id)) == 1
    assert (await tx.run(lambda uow: uow.videos.newest(kept.video_id, ALICE))).task_id == kept.id


async def test_a_unit_of_work_is_one_transaction(store: SqlTaskStore, tx: SqlTransactions) -> None:
    task = make_task(ALICE)
    await store.save_task(task)
    await store.add_segments(task.id, [make_segment(task.id, 0)])

    def half_done(uow: UnitOfWork) -> None:
        changed = uow.tasks.get(task.id, ALICE, lock=True)
        changed.liveroom_title = "half-done"
        uow.tasks.save(changed)
        uow.segments.remove_all(task.id)
        uow.failures.add(make_failure(task.id))
        raise FailedPrecondition("refused after every write")

    with pytest.raises(FailedPrecondition):
        await tx.run(half_done)
    assert await store.get_task(task.id) == task  # nothing of it was kept
    assert len(await store.list_segments(task.id)) == 1
    assert await store.task_failures(task.id) == []

    def start_over(uow: UnitOfWork) -> Task:
        changed = uow.tasks.get(task.id, ALICE, lock=True)
        changed.start_over("https://cdn.example.com/other.m3u8")
        uow.segments.remove_all(task.id)
        uow.failures.abandon_open(task.id, changed.update_time)
        uow.tasks.save(changed)
        return changed

    updated = await tx.run(start_over)
    assert (await store.get_task(task.id)) == updated
    assert await store.list_segments(task.id) == []
    with pytest.raises(NotFound):
        await tx.run(lambda uow: uow.tasks.get(task.id, BOB, lock=True))


async def test_list_tasks_keyset_breaks_time_ties_by_id(store: SqlTaskStore, tx: SqlTransactions) -> None:
    # Five tasks share one creation instant: only the id orders them, and no page may drop or repeat one.
    tied = [make_task(ALICE, create_time=at(0), update_time=at(-i)) for i in range(5)]
    rest = [make_task(ALICE, create_time=at(i + 1), update_time=at(i + 1)) for i in range(4)]
    for task in [*tied, *rest, make_task(BOB)]:
        await store.save_task(task)
    for ordering in (Ordering(), Ordering(descending=False), Ordering(SortField.UPDATE_TIME, descending=True)):
        key = "create_time" if ordering.field is SortField.CREATE_TIME else "update_time"
        expected = sorted([*tied, *rest], key=lambda t: (getattr(t, key), t.id), reverse=ordering.descending)
        seen: list[str] = []
        cursor = None
        while True:
            page = await tx.run(functools.partial(_page, TaskQuery(ALICE, ordering=ordering), cursor))
            assert page.total_size == 9
            seen.extend(t.id for t in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == [t.id for t in expected], ordering


def _page(query: TaskQuery, cursor: Cursor | None, uow: UnitOfWork) -> Page[Task]:
    return uow.tasks.page(query, cursor, 2)


async def test_hot_task_read_gives_what_the_unit_of_work_gives_and_checks_the_owner(tx: SqlTransactions) -> None:
    task = make_task(ALICE, status=TaskStatus.PROCESSING, progress=0.5, create_time=at(0), update_time=at(1))
    await tx.run(lambda uow: uow.tasks.add(task))

    got = await tx.read_task(task.id, ALICE)
    assert got == await tx.run(lambda uow: uow.tasks.get(task.id, ALICE)) == task
    assert await tx.read_task(task.id) == task  # no owner given: the engine's read
    for task_id, owner in ((task.id, BOB), (new_id(), ALICE), (new_id(), None)):
        with pytest.raises(NotFound):
            await tx.read_task(task_id, owner)
    task.progress = 0.75
    await tx.run(lambda uow: uow.tasks.save(task))
    assert (await tx.read_task(task.id, ALICE)).progress == 0.75  # nothing cached: every read is fresh
