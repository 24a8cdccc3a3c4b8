"""Engine metrics scraped from /metrics after real downloads, and downloads that outlive the server: a graceful
stop leaves the running task PROCESSING and the queued one PENDING, and the next server finishes both."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from download_server.engine.settings import EngineSettings
from mediadl.download.v1 import download_pb2 as pb
from mediadl_common.db import Database
from tests.download.engine_api.conftest import ServerFactory
from tests.download.engine_api.flows import TS, first_events, seg, until
from tests.download.helpers import sql_store
from tests.support.net import free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(address: str) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(f"http://{address}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def one_slot(engine: EngineSettings) -> EngineSettings:
    return replace(engine, max_active_tasks=1)


async def test_engine_counters_are_scraped_after_a_real_download(
    serve: ServerFactory, make_database_url: Callable[[str], str], manifest: dict[str, Any]
) -> None:
    address = f"127.0.0.1:{free_port()}"
    async with serve(
        make_database_url("sqlite"), engine_overrides=one_slot, DOWNLOAD_METRICS_ADDR=address
    ) as downloads:
        origin = downloads.origin
        origin.fail(seg(1), status=503, times=2)  # retried twice, then served
        origin.fail(seg(4), status=404)  # a failure record
        gate = origin.gate(seg(5))
        first, second = await downloads.create(TS), await downloads.create("image/frame.png", "IMAGE")
        stream = downloads.start_stream(first.id)
        await until(stream, lambda e: e.status == pb.TASK_STATUS_PROCESSING)
        queued = downloads.start_stream(second.id)
        await until(queued, lambda e: e.status == pb.TASK_STATUS_PENDING)

        busy = await scrape(address)
        assert busy[("mediadl_download_tasks", (("status", "PROCESSING"),))] == 1
        assert busy[("mediadl_download_tasks", (("status", "PENDING"),))] == 1
        gate.set()
        assert [e.status async for e in _events(stream)][-1] == pb.TASK_STATUS_PARTIAL_COMPLETED
        assert [e.status async for e in _events(queued)][-1] == pb.TASK_STATUS_COMPLETED
        after = await scrape(address)

    sizes = [(origin.root / seg(i)).stat().st_size for i in (0, 1, 2, 3, 5)]
    image = manifest["image"]["image/frame.png"]["size"]
    assert after[("mediadl_download_received_bytes_total", ())] == sum(sizes) + image
    assert after[("mediadl_download_segments_total", (("result", "done"),))] == 6  # 5 segments and the image
    assert after[("mediadl_download_segments_total", (("result", "failed"),))] == 1
    assert after[("mediadl_download_failures_recorded_total", (("error_type", "http_error"),))] == 1
    assert after[("mediadl_download_fetch_retries_total", (("error_type", "http_error"),))] == 2
    assert after[("mediadl_download_runs_ended_total", (("status", "PARTIAL_COMPLETED"),))] == 1
    assert after[("mediadl_download_runs_ended_total", (("status", "COMPLETED"),))] == 1
    assert after[("mediadl_download_tasks", (("status", "PROCESSING"),))] == 0
    assert after[("mediadl_download_tasks", (("status", "PENDING"),))] == 0
    start_task = "/mediadl.download.v1.DownloadService/StartTask"
    assert after[("mediadl_rpc_requests_total", (("code", "OK"), ("method", start_task)))] == 2  # one registry


async def _events(call: Any) -> Any:
    async for response in call:
        yield response.event


async def test_a_restart_finishes_the_running_task_and_the_queued_one_in_order(
    serve: ServerFactory, database_url: str, manifest: dict[str, Any]
) -> None:
    async with serve(database_url, engine_overrides=one_slot) as downloads:
        origin = downloads.origin
        origin.gate(seg(4))  # held until the server stops: the download is mid-way then
        running = await downloads.create(TS)
        waiting = [await downloads.create("hls_fmp4/index.m3u8"), await downloads.create("mp4/clip.mp4", "MP4")]
        # Everything but the held segment is on disk (renamed) before the stop: nothing complete can be lost.
        await until(downloads.start_stream(running.id), lambda e: e.segments_done == 5)
        for task in waiting:
            await until(downloads.start_stream(task.id), lambda e: e.status == pb.TASK_STATUS_PENDING)
    # Stopped gracefully: what ran stays PROCESSING for recovery, what waited keeps its place in the line.
    database = Database(database_url, pool_size=1)
    try:
        stored = [await sql_store(database).get_task(t.id) for t in (running, *waiting)]
    finally:
        database.close()
    assert [t.status.value for t in stored] == ["PROCESSING", "PENDING", "PENDING"]
    queued_times = [t.queued_time for t in stored[1:]]
    assert None not in queued_times and queued_times == sorted(queued_times)  # type: ignore[type-var]

    resume_gate = origin.gate(seg(4))  # the recovered run waits here until the test watches everything
    async with serve(database_url, engine_overrides=one_slot) as restarted:
        everything = restarted.api.stub.WatchTasks(pb.WatchTasksRequest(), metadata=restarted.md())
        current = [e async for e in first_events(everything, 3)]
        assert [(e.task_id, e.status) for e in current] == [
            (running.id, pb.TASK_STATUS_PROCESSING),  # recovered at start-up, before any call
            (waiting[0].id, pb.TASK_STATUS_PENDING),
            (waiting[1].id, pb.TASK_STATUS_PENDING),
        ]
        resume_gate.set()
        started: list[str] = [running.id]
        finished: set[str] = set()
        async for response in everything:
            event = response.event
            if event.status == pb.TASK_STATUS_PROCESSING and event.task_id not in started:
                started.append(event.task_id)
            if event.status == pb.TASK_STATUS_COMPLETED:
                finished.add(event.task_id)
            if len(finished) == 3:
                break
        everything.cancel()
        assert started == [running.id, waiting[0].id, waiting[1].id]  # one slot, in the order they were started
        assert restarted.segment_hashes(running.id) == manifest["hls_ts"]["segment_sha256"]
        assert restarted.segment_hashes(waiting[0].id) == manifest["hls_fmp4"]["segment_sha256"]
        assert [(await restarted.api.store.get_task(t.id)).queued_time for t in waiting] == [None, None]
    assert restarted.served("hls_ts/seg") == {seg(i): 1 for i in range(6)}
