"""WorkQueue: ready segments first, then the store's PENDING rows of the planned span a slice at a time;
a live poll's extend wakes a waiting worker; close ends the workers once everything was taken."""

from __future__ import annotations

import asyncio

import pytest

from download_server.domain.models import Segment, SegmentStatus
from download_server.engine.jobs import work
from download_server.engine.jobs.work import WorkQueue
from tests.download.engine.fakes import FakeTaskStore
from tests.download.helpers import make_segment

TASK = "task-1"


@pytest.fixture
def store() -> FakeTaskStore:
    return FakeTaskStore()


def reader(store: FakeTaskStore) -> work.Reader:
    async def read(after: int, limit: int) -> list[Segment]:
        return await store.pending_segments(TASK, after, limit)

    return read


async def take_all(queue: WorkQueue) -> list[int]:
    taken = []
    while (segment := await queue.get()) is not None:
        taken.append(segment.index)
    return taken


async def test_ready_segments_then_the_span_in_slices_skipping_finished_rows(
    store: FakeTaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(work, "FEED_SLICE", 3)
    done = {12, 13}
    await store.add_segments(
        TASK,
        [make_segment(TASK, i, status=SegmentStatus.DONE if i in done else SegmentStatus.PENDING) for i in range(30)],
    )
    # Rows 0-9 are the run's already (ready: a resume's); 10-19 the span planned since; 20-29 not told yet.
    queue = WorkQueue(reader(store), 9, 19, [make_segment(TASK, 4), make_segment(TASK, 7)])
    assert queue.left() == 2 + 10
    await queue.close()

    assert await take_all(queue) == [4, 7, 10, 11, 14, 15, 16, 17, 18, 19]
    # Slices of 3: (10 11 14), (15 16 17), (18 19 20): row 20 lies past the span, so that was the last read.
    assert store.calls["pending_segments"] == 3
    assert queue.buffered == 0


async def test_extend_hands_out_what_a_live_poll_planned_to_a_waiting_worker(store: FakeTaskStore) -> None:
    queue = WorkQueue(reader(store), -1, -1)
    worker = asyncio.create_task(take_all(queue))
    await asyncio.sleep(0)
    await store.add_segments(TASK, [make_segment(TASK, i) for i in range(3)])
    await queue.extend(2)
    await store.add_segments(TASK, [make_segment(TASK, 3)])
    await queue.extend(3)
    await queue.extend(1)  # never backwards
    await queue.close()

    assert await worker == [0, 1, 2, 3]
