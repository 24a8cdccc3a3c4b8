"""The progress broker and the throttled tracker: many watchers, slow watchers, closed watchers, flush counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

from download_server.domain.models import ResourceType, Task, TaskEvent, TaskStatus
from download_server.engine.files.layout import Storage
from download_server.engine.progress.broker import (
    MAX_PENDING_PER_TASK,
    ProgressBroker,
    current_event,
    watch_task,
    watch_user,
)
from tests.download.engine.conftest import ENGINE, Harness
from tests.support.origin import Origin


def event(task_id: str, status: TaskStatus, done: int, user: str = "u") -> TaskEvent:
    return TaskEvent(task_id, user, status, done / 100, done, 0, done, 0, 100)


def make_task(task_id: str = "t1", status: TaskStatus = TaskStatus.PENDING, user: str = "u") -> Task:
    return Task(task_id, user, "v", "room", "title", "", "https://x/a.m3u8", ResourceType.HLS, status=status)


async def test_a_slow_watcher_keeps_the_latest_and_every_state_change_in_bounded_memory() -> None:
    broker = ProgressBroker()
    with broker.subscribe(task_id="t1") as slow:
        for done in range(1000):
            broker.publish(event("t1", TaskStatus.PROCESSING, done))
        broker.publish(event("t1", TaskStatus.PAUSED, 1000))
        broker.publish(event("t1", TaskStatus.PROCESSING, 1000))
        for done in range(1001, 2000):
            broker.publish(event("t1", TaskStatus.PROCESSING, done))
        broker.publish(event("t1", TaskStatus.COMPLETED, 2000))
        got = [await anext(slow) for _ in range(4)]
    assert [(e.status, e.segments_done) for e in got] == [
        (TaskStatus.PROCESSING, 999),
        (TaskStatus.PAUSED, 1000),
        (TaskStatus.PROCESSING, 1999),
        (TaskStatus.COMPLETED, 2000),
    ]


async def test_state_changes_beyond_the_bound_drop_the_oldest_but_keep_the_final_one() -> None:
    broker = ProgressBroker()
    with broker.subscribe(task_id="t1") as slow:
        for n in range(100):
            broker.publish(event("t1", TaskStatus.PENDING if n % 2 else TaskStatus.PROCESSING, n))
        broker.publish(event("t1", TaskStatus.CANCELLED, 100))
        got = []
        while True:
            got.append(await anext(slow))
            if got[-1].status is TaskStatus.CANCELLED:
                break
    assert len(got) <= MAX_PENDING_PER_TASK and got[-1].segments_done == 100


async def test_watch_task_sends_the_current_state_first_and_ends_after_a_final_event() -> None:
    broker = ProgressBroker()
    stored = make_task(status=TaskStatus.PROCESSING)

    async def load() -> Task:
        return stored

    stream = watch_task(broker, "t1", load)
    first = await anext(stream)
    assert (first.status, first.task_id) == (TaskStatus.PROCESSING, "t1")
    broker.publish(event("t1", TaskStatus.PROCESSING, 5))
    broker.publish(event("t1", TaskStatus.PARTIAL_COMPLETED, 9))
    broker.publish(event("t1", TaskStatus.PROCESSING, 10))  # a later run: not for this stream
    assert [e.status async for e in stream] == [TaskStatus.PROCESSING, TaskStatus.PARTIAL_COMPLETED]
    assert broker.subscriber_count() == 0


async def test_watching_a_paused_task_gives_one_event() -> None:
    async def load() -> Task:
        return make_task(status=TaskStatus.PAUSED)

    assert [e.status async for e in watch_task(ProgressBroker(), "t1", load)] == [TaskStatus.PAUSED]


async def test_watch_user_sees_only_that_users_matching_tasks() -> None:
    broker = ProgressBroker()

    async def load() -> list[Task]:
        return [make_task("a", TaskStatus.PROCESSING), make_task("b", TaskStatus.COMPLETED)]

    stream = watch_user(broker, "u", load, statuses=[TaskStatus.PROCESSING, TaskStatus.FAILED])
    assert (await anext(stream)).task_id == "a"
    broker.publish(event("c", TaskStatus.PROCESSING, 1, user="someone-else"))
    broker.publish(event("a", TaskStatus.COMPLETED, 2))  # filtered out by status
    broker.publish(event("d", TaskStatus.FAILED, 3))
    assert (await anext(stream)).task_id == "d"
    await stream.aclose()
    assert broker.subscriber_count() == 0


async def test_a_change_committed_while_watch_user_loads_is_not_lost() -> None:
    """The load reads a task just before a cancel commits; the cancel's event arrives before the load
    returns. The stream must show CANCELLED (a dashboard that missed it kept the task PENDING for good)."""
    broker = ProgressBroker()
    stored = make_task("a", TaskStatus.PENDING)

    async def load() -> list[Task]:
        read = replace(stored)  # the row as read, before the cancel committed
        broker.publish(
            replace(event("a", TaskStatus.CANCELLED, 0), event_time=stored.update_time + timedelta(seconds=1))
        )
        broker.publish(event("late", TaskStatus.PROCESSING, 1))  # a task the load did not see yet
        return [read]

    stream = watch_user(broker, "u", load)
    first = await anext(stream)
    assert (first.task_id, first.status) == ("a", TaskStatus.CANCELLED)
    second = await anext(stream)
    assert (second.task_id, second.status) == ("late", TaskStatus.PROCESSING)
    await stream.aclose()


def test_current_event_takes_the_newer_of_the_stored_row_and_the_last_event() -> None:
    broker = ProgressBroker()
    row = make_task("a", TaskStatus.PENDING)
    broker.publish(replace(event("a", TaskStatus.FAILED, 3), event_time=row.update_time - timedelta(seconds=1)))
    assert current_event(broker, row).status is TaskStatus.PENDING  # reset after it failed: the event is stale
    broker.publish(replace(event("a", TaskStatus.CANCELLED, 3), event_time=row.update_time + timedelta(seconds=1)))
    assert current_event(broker, row).status is TaskStatus.CANCELLED  # committed after the row was read
    broker.publish(replace(event("a", TaskStatus.PENDING, 7), event_time=row.update_time - timedelta(seconds=5)))
    assert current_event(broker, row).segments_done == 7  # same status: the event's newer counters


async def test_watchers_see_monotonic_progress_and_closing_one_changes_nothing(harness: Harness) -> None:
    gate = harness.origin.gate("hls_ts/seg05.ts")  # keeps the run going until the watchers are set up
    task = await harness.create("hls_ts/index.m3u8")
    watchers = [harness.events(task.id) for _ in range(3)]
    firsts = [await anext(w) for w in watchers]
    await harness.scheduler.start(task.id)
    closed = watchers.pop()
    assert (await anext(closed)).status in (TaskStatus.PENDING, TaskStatus.PROCESSING)
    await closed.aclose()
    gate.set()
    seen = [[first, *[e async for e in w]] for first, w in zip(firsts, watchers, strict=False)]

    for events in seen:
        assert events[-1].status is TaskStatus.COMPLETED and events[-1].progress == 1.0
        assert events[-1].segments_done == 6
        done = [e.segments_done for e in events]
        progress = [e.progress for e in events]
        assert done == sorted(done) and progress == sorted(progress)
    assert (await harness.store.get_task(task.id)).status is TaskStatus.COMPLETED
    assert harness.broker.subscriber_count() == 0


async def test_a_stalled_download_still_sends_heartbeats(harness: Harness) -> None:
    gate = harness.origin.gate("hls_ts/seg00.ts")
    task = await harness.create("hls_ts/index.m3u8")
    with harness.broker.subscribe(task_id=task.id) as sub:
        await harness.scheduler.start(task.id)
        # The origin holds segment 0 (no byte of it sent) while the other five download beside it; once they
        # are done (and one more event, which may still carry the last bytes), nothing changes: every further
        # event is a heartbeat. Without heartbeats the reads below time out.
        async for e in _first(sub, 1000):
            if e.segments_done == 5:
                break
        stalled = [e async for e in _first(sub, 5)][1:]
    gate.set()
    await harness.scheduler.cancel(task.id)

    assert all(e.status is TaskStatus.PROCESSING for e in stalled)
    assert len({(e.segments_done, e.bytes_downloaded, e.segments_total) for e in stalled}) == 1
    assert (stalled[0].segments_done, stalled[0].segments_total) == (5, 6)
    times = [e.event_time for e in stalled]
    assert times == sorted(times) and len(set(times)) == len(times)  # four distinct beats, in order


async def _first(events: AsyncIterator[TaskEvent], count: int) -> AsyncIterator[TaskEvent]:
    """The next `count` events; fails (instead of hanging until the test timeout) if they do not come."""
    for _ in range(count):
        yield await asyncio.wait_for(anext(events), timeout=30)


async def test_progress_is_flushed_at_state_changes_not_per_segment(origin: Origin, storage: Storage) -> None:
    # Forty segments, flush and event intervals of an hour: only state changes may reach the store or the
    # watchers, so counting calls shows the throttle (without measuring any time).
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:1"]
    for i in range(40):
        lines += ["#EXTINF:1.0,", f"../hls_ts/seg0{i % 6}.ts"]
    origin.write("many/index.m3u8", "\n".join([*lines, "#EXT-X-ENDLIST", ""]).encode())
    harness = Harness(origin, storage, replace(ENGINE, event_interval=3600, heartbeat=3600, flush_interval=3600))
    try:
        task = await harness.create("many/index.m3u8")
        done = await harness.run(task)
    finally:
        await harness.scheduler.close()
    assert done.status is TaskStatus.COMPLETED and done.segments_done == 40
    assert harness.store.calls["save_progress"] == 1  # the final state change
    assert len(harness.last_events) == 2  # PROCESSING (started), COMPLETED
    assert len(await harness.store.list_segments(task.id)) == 40
