"""EventHub unit tests over a scripted WatchTasks stream: one stream per session shared by its pages, closed
with the last page, current state first for a page that joins, newest-per-task buffering, and endings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import pytest

from clients import AuthenticationError, TaskEvent, TaskEventStream, TaskStatus, UnavailableError
from dashboard.relay import EventHub, HubClosed, Listener

WAIT = 5.0  # upper bound for anything awaited here; never reached when the code works


def event(task_id: str, progress: float = 0.0, status: TaskStatus = TaskStatus.PROCESSING) -> TaskEvent:
    return TaskEvent(
        task_id=task_id,
        status=status,
        progress=progress,
        bytes_downloaded=int(progress * 1000),
        bytes_total=1000,
        segments_done=0,
        segments_failed=0,
        segments_total=6,
        speed_bytes_per_second=100.0,
        eta_seconds=3.0,
        message="",
        event_time=datetime.now(UTC),
    )


class ScriptedWatch:
    """Stands in for client.watch_all(): each opened stream yields what the test puts, or raises it."""

    def __init__(self) -> None:
        self.opened = 0
        self.open_now = 0
        self.queue: asyncio.Queue[TaskEvent | Exception] = asyncio.Queue()
        self.changed = asyncio.Event()

    def __call__(self) -> TaskEventStream:
        async def events() -> AsyncGenerator[TaskEvent, None]:
            self.opened += 1
            self.open_now += 1
            self.changed.set()
            try:
                while True:
                    item = await self.queue.get()
                    if isinstance(item, Exception):
                        raise item
                    yield item
            finally:
                self.open_now -= 1
                self.changed.set()

        return TaskEventStream(events())

    async def wait_open(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while self.open_now != count:
                self.changed.clear()
                await self.changed.wait()


async def items(listener: Listener) -> list[dict[str, object]]:
    batch = await listener.next_batch(WAIT)
    assert batch is not None
    return batch


async def test_pages_of_a_session_share_one_stream_that_closes_with_the_last_page() -> None:
    watch = ScriptedWatch()
    hub = EventHub(watch)
    async with hub.listen() as first:
        await watch.wait_open(1)
        async with hub.listen() as second:
            watch.queue.put_nowait(event("a", 0.5))
            assert [i["progress"] for i in await items(first)] == [0.5]
            assert [i["progress"] for i in await items(second)] == [0.5]
            assert watch.opened == 1 and hub.listener_count == 2
        assert hub.streaming and watch.open_now == 1
    await watch.wait_open(0)
    assert not hub.streaming and hub.listener_count == 0
    # The next page opens a new stream (which starts with the current state, as WatchTasks does).
    async with hub.listen():
        await watch.wait_open(1)
    assert watch.opened == 2


async def test_a_page_that_joins_gets_the_current_state_of_every_task_first() -> None:
    watch = ScriptedWatch()
    hub = EventHub(watch)
    async with hub.listen() as first:
        for item in (event("a", 0.1), event("b", 0.2), event("a", 0.3)):
            watch.queue.put_nowait(item)
        seen: dict[object, object] = {}
        while seen != {"a": 0.3, "b": 0.2}:
            seen.update({i["task_id"]: i["progress"] for i in await items(first)})
        async with hub.listen() as late:
            assert {i["task_id"]: i["progress"] for i in await items(late)} == {"a": 0.3, "b": 0.2}


async def test_a_slow_page_gets_the_newest_state_per_task_in_arrival_order() -> None:
    listener = Listener()
    for progress in (0.1, 0.2, 0.3):
        listener.offer({"task_id": "a", "progress": progress})
    listener.offer({"task_id": "b", "progress": 0.9})
    listener.offer({"task_id": "a", "progress": 0.4})
    assert await items(listener) == [{"task_id": "b", "progress": 0.9}, {"task_id": "a", "progress": 0.4}]
    assert await listener.next_batch(0.01) is None  # nothing new: the caller sends a heartbeat


async def test_forget_removes_a_deleted_task_everywhere() -> None:
    watch = ScriptedWatch()
    hub = EventHub(watch)
    async with hub.listen() as page:
        watch.queue.put_nowait(event("a"))
        await items(page)
        hub.forget("a")
        assert await items(page) == [{"task_id": "a", "removed": True}]
        async with hub.listen() as late:
            assert await late.next_batch(0.01) is None  # "a" is no longer part of the current state


@pytest.mark.parametrize(
    ("error", "reason"),
    [(AuthenticationError("refresh refused"), "expired"), (UnavailableError("download server down"), "unavailable")],
)
async def test_a_failed_stream_ends_its_pages_and_the_next_page_opens_a_new_one(error: Exception, reason: str) -> None:
    watch = ScriptedWatch()
    hub = EventHub(watch)
    async with hub.listen() as page:
        watch.queue.put_nowait(event("a", 0.5))
        watch.queue.put_nowait(error)
        assert [i["progress"] for i in await items(page)] == [0.5]  # what came before the error is delivered
        with pytest.raises(HubClosed) as ended:
            await page.next_batch(WAIT)
        assert ended.value.reason == reason
        await watch.wait_open(0)
        async with hub.listen() as retry:
            await watch.wait_open(1)
            watch.queue.put_nowait(event("a", 0.6))
            assert [i["progress"] for i in await items(retry)] == [0.6]
    assert watch.opened == 2


async def test_close_ends_every_page_for_good() -> None:
    watch = ScriptedWatch()
    hub = EventHub(watch)
    async with hub.listen() as page:
        await watch.wait_open(1)
        await hub.close("logout")
        assert watch.open_now == 0
        with pytest.raises(HubClosed) as ended:
            await page.next_batch(WAIT)
        assert ended.value.reason == "logout"
    async with hub.listen() as late:
        with pytest.raises(HubClosed):
            await late.next_batch(WAIT)
    assert watch.opened == 1  # a closed hub never opens another stream
