"""Progress streams over gRPC: the first message at once, many watchers, closing streams, WatchTasks per user,
StartTask attaching, queued tasks, and other users' tasks answered NOT_FOUND before any message."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import grpc

from download_server.engine.settings import EngineSettings
from mediadl.download.v1 import download_pb2 as pb
from tests.download.api import stream_failure
from tests.download.engine_api.conftest import ServerFactory
from tests.download.engine_api.flows import (
    ALICE,
    BOB,
    TS,
    Downloads,
    events_of,
    first_events,
    is_monotonic,
    seg,
    until,
)


async def test_the_first_message_is_the_current_state_at_once(downloads: Downloads) -> None:
    task = await downloads.create(TS)
    watcher = downloads.watch_stream(task.id)
    first = (await anext(aiter(watcher))).event  # nothing is downloading: only the current state can come
    watcher.cancel()
    assert (first.task_id, first.status, first.segments_total, first.bytes_downloaded) == (
        task.id,
        pb.TASK_STATUS_PENDING,
        0,
        0,
    )
    assert first.HasField("event_time")

    await downloads.start(task.id)
    [only] = await downloads.watch(task.id)  # a finished task: its state, and the stream ends
    assert (only.status, only.segments_done, only.progress) == (pb.TASK_STATUS_COMPLETED, 6, 1.0)


async def test_several_watchers_see_monotonic_progress_and_closing_streams_changes_nothing(
    downloads: Downloads,
) -> None:
    gate = downloads.origin.gate(seg(3))
    task = await downloads.create(TS)
    starter = downloads.start_stream(task.id)
    await until(starter, lambda e: e.status == pb.TASK_STATUS_PROCESSING)
    watchers = [downloads.watch_stream(task.id) for _ in range(3)]
    firsts = [(await anext(aiter(w))).event for w in watchers]
    assert all(f.status == pb.TASK_STATUS_PROCESSING for f in firsts)
    starter.cancel()  # the stream that started the download goes away...
    watchers[2].cancel()  # ...and so does a watcher
    await downloads.origin.wait_requests(seg(3), 1)
    gate.set()

    seen = [[first, *await events_of(w)] for first, w in zip(firsts[:2], watchers[:2], strict=True)]
    for events in seen:
        assert is_monotonic(events)
        assert events[-1].status == pb.TASK_STATUS_COMPLETED
        assert [e.status for e in events].count(pb.TASK_STATUS_COMPLETED) == 1
    assert (await downloads.get(task.id)).status == pb.TASK_STATUS_COMPLETED
    assert downloads.served("hls_ts/seg") == {seg(i): 1 for i in range(6)}


async def test_start_on_a_running_task_attaches_instead_of_starting_twice(downloads: Downloads) -> None:
    gate = downloads.origin.gate(seg(5))
    task = await downloads.create(TS)
    first_stream = downloads.start_stream(task.id)
    await until(first_stream, lambda e: e.status == pb.TASK_STATUS_PROCESSING)
    second_stream = downloads.start_stream(task.id)
    attached = (await anext(aiter(second_stream))).event
    assert attached.status == pb.TASK_STATUS_PROCESSING
    gate.set()

    first_rest, second_rest = await events_of(first_stream), await events_of(second_stream)
    assert first_rest[-1].status == second_rest[-1].status == pb.TASK_STATUS_COMPLETED
    assert downloads.origin.requests[TS] == 1
    assert {path: n for path, n in downloads.origin.requests.items() if path.startswith("hls_ts/seg")} == {
        seg(i): 1 for i in range(6)
    }


async def test_watch_tasks_carries_every_task_of_the_caller_and_nothing_of_anyone_else(
    downloads: Downloads,
) -> None:
    mine = [await downloads.create(TS), await downloads.create("hls_fmp4/index.m3u8")]
    theirs = await downloads.create("hls_aes128/index.m3u8", user=BOB)
    everything = downloads.api.stub.WatchTasks(pb.WatchTasksRequest(), metadata=downloads.md(ALICE))
    current = [e async for e in first_events(everything, 2)]
    assert [(e.task_id, e.status) for e in current] == [(t.id, pb.TASK_STATUS_PENDING) for t in mine]
    finished_only = downloads.api.stub.WatchTasks(
        pb.WatchTasksRequest(statuses=[pb.TASK_STATUS_COMPLETED]), metadata=downloads.md(ALICE)
    )

    # Bob's download runs (and ends) while Alice is subscribed: a leak would be in her stream before her own.
    assert (await downloads.start(theirs.id, user=BOB))[-1].status == pb.TASK_STATUS_COMPLETED
    for task in mine:
        assert (await downloads.start(task.id))[-1].status == pb.TASK_STATUS_COMPLETED

    completed: set[str] = set()
    async for response in everything:
        event = response.event
        assert event.task_id in {t.id for t in mine}
        if event.status == pb.TASK_STATUS_COMPLETED:
            completed.add(event.task_id)
        if completed == {t.id for t in mine}:
            break
    everything.cancel()
    filtered = [e async for e in first_events(finished_only, 2)]
    finished_only.cancel()
    assert {e.task_id for e in filtered} == {t.id for t in mine}
    assert {e.status for e in filtered} == {pb.TASK_STATUS_COMPLETED}


async def test_another_users_task_is_not_found_before_any_message(downloads: Downloads) -> None:
    downloads.origin.fail(seg(2), status=404)
    task = await downloads.create(TS)
    await downloads.start(task.id)
    [failure] = await downloads.failures(task.id)
    stub, bob = downloads.api.stub, downloads.md(BOB)

    for call in (
        stub.WatchTask(pb.WatchTaskRequest(task_id=task.id), metadata=bob),
        stub.StartTask(pb.StartTaskRequest(task_id=task.id), metadata=bob),
        stub.RetryTask(pb.RetryTaskRequest(task_id=task.id), metadata=bob),
    ):
        refused = await stream_failure(call)
        assert (refused.code, refused.reason) == (grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")
    retry = stub.RetryFailure(pb.RetryFailureRequest(failure_id=failure.id), metadata=bob)
    try:
        await retry
        raise AssertionError("Bob retried Alice's failure")
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.NOT_FOUND
    wrong_task = stub.RetryFailure(
        pb.RetryFailureRequest(failure_id=failure.id, task_id=(await downloads.create(TS)).id),
        metadata=downloads.md(ALICE),
    )
    try:
        await wrong_task
        raise AssertionError("a failure was retried under another task's id")
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.NOT_FOUND
    # Nothing happened to Alice's task.
    assert (await downloads.get(task.id)).status == pb.TASK_STATUS_PARTIAL_COMPLETED
    assert downloads.origin.requests[seg(2)] == 1


async def test_bad_stream_requests_are_refused_with_the_field_or_the_state(downloads: Downloads) -> None:
    stub, md = downloads.api.stub, downloads.md()
    malformed = await stream_failure(stub.StartTask(pb.StartTaskRequest(task_id="not-a-uuid"), metadata=md))
    assert (malformed.code, list(malformed.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, ["task_id"])
    unknown_status: Any = 99  # a number no TaskStatus has (a newer client's, say)
    bad_filter = await stream_failure(stub.WatchTasks(pb.WatchTasksRequest(statuses=[unknown_status]), metadata=md))
    assert (bad_filter.code, list(bad_filter.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, ["statuses"])
    task = await downloads.create(TS)
    not_failed = await stream_failure(stub.RetryTask(pb.RetryTaskRequest(task_id=task.id), metadata=md))
    assert (not_failed.code, not_failed.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "TASK_STATE")
    await downloads.start(task.id)
    finished = await stream_failure(stub.StartTask(pb.StartTaskRequest(task_id=task.id), metadata=md))
    assert (finished.code, finished.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "TASK_STATE")


def one_slot(engine: EngineSettings) -> EngineSettings:
    return replace(engine, max_active_tasks=1)


async def test_a_task_beyond_the_slots_is_queued_and_its_stream_says_where(
    serve: ServerFactory, make_database_url: Callable[[str], str]
) -> None:
    async with serve(make_database_url("sqlite"), engine_overrides=one_slot) as downloads:
        gate = downloads.origin.gate(seg(5))
        running, waiting = await downloads.create(TS), await downloads.create("hls_fmp4/index.m3u8")
        running_stream = downloads.start_stream(running.id)
        await until(running_stream, lambda e: e.status == pb.TASK_STATUS_PROCESSING)
        waiting_stream = downloads.start_stream(waiting.id)
        queued = (await anext(aiter(waiting_stream))).event
        assert (queued.status, queued.message) == (
            pb.TASK_STATUS_PENDING,
            "queued: position 1 of 1, waiting for one of 1 slots",
        )
        assert not any(path.startswith("hls_fmp4/") for path in downloads.origin.requests)
        gate.set()
        rest: list[Any] = await events_of(waiting_stream)
        statuses = [e.status for e in rest]
        assert statuses[-1] == pb.TASK_STATUS_COMPLETED and pb.TASK_STATUS_PROCESSING in statuses
        assert (await events_of(running_stream))[-1].status == pb.TASK_STATUS_COMPLETED


async def test_open_watch_streams_end_at_shutdown_instead_of_holding_the_grace(downloads: Downloads) -> None:
    api = downloads.api
    await api.create_task(ALICE)
    stream = api.stub.WatchTasks(pb.WatchTasksRequest(), metadata=api.auth(ALICE))
    first = await stream.read()
    assert first.event.status == pb.TASK_STATUS_PENDING
    # A dashboard's stream never ends by itself; shutdown must end it rather than wait out 60 s of grace.
    await asyncio.wait_for(api.running.stop(grace=60), timeout=15)
    while (reply := await stream.read()) is not grpc.aio.EOF:
        assert reply.event.task_id
    assert await stream.code() == grpc.StatusCode.OK
