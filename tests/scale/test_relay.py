"""The NOTIFY relay on its own: payloads under PostgreSQL's limit, and a LISTEN connection that dies is opened
again and what its watchers wait on is read from the database (a terminal event sent meanwhile is not lost)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from download_server.adapters.pg_events import MAX_PAYLOAD, decode_event, encode_event
from download_server.adapters.pg_notify import PgRelay
from download_server.domain.models import TaskEvent, TaskStatus
from download_server.engine.progress.relay import RelayedBroker
from mediadl.download.v1 import download_pb2 as pb
from mediadl_common.db import Database
from tests.download.api import download_settings, running_download_server
from tests.download.helpers import sql_store
from tests.scale.cluster import hls_copies, seg, until
from tests.support.origin import Origin

EVENT = TaskEvent(
    task_id="7f1c1c4e-0000-4000-8000-000000000001",
    user_id="user-1",
    status=TaskStatus.PROCESSING,
    progress=0.5,
    bytes_downloaded=12_345,
    bytes_total=0,
    segments_done=3,
    segments_failed=1,
    segments_total=6,
    speed_bytes_per_second=1024.5,
    eta_seconds=2.25,
    message="downloading the highest-bandwidth variant",
)


def test_events_travel_whole_and_long_messages_are_clipped_under_the_payload_limit() -> None:
    assert decode_event(encode_event(EVENT, "replica-a")) == ("replica-a", EVENT)

    wordy = replace(EVENT, message="é" * 6000)  # 12000 bytes in UTF-8
    payload = encode_event(wordy, "replica-a")
    assert len(payload.encode()) <= MAX_PAYLOAD
    _, clipped = decode_event(payload)
    assert isinstance(clipped, TaskEvent) and clipped == replace(wordy, message="é" * 1000)

    oversized = replace(EVENT, user_id="u" * 9000)  # cannot be clipped: sent by reference, listeners read the row
    assert decode_event(encode_event(oversized, "replica-a")) == ("replica-a", EVENT.task_id)


@pytest.mark.postgres
async def test_a_lost_listen_connection_reconnects_and_rereads_what_watchers_wait_on(
    make_database_url: Callable[[str], str], media_fixtures: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database_url = make_database_url("postgresql")
    settings = download_settings(database_url, tmp_path / "storage", DOWNLOAD_ALLOW_PRIVATE_NETWORKS="true")
    async with Origin.serving(media_fixtures, tmp_path) as origin, running_download_server(settings) as api:
        [stream] = hls_copies(origin, 1)
        gate = origin.gate(seg(stream, 5))
        # Replica A is just a relay and a broker here; the server above plays replica B and runs the task.
        database = Database(database_url, pool_size=1)
        relay = PgRelay(database_url, "replica-a", sql_store(database).tasks_by_ids, reconnect_delay=3.0)
        broker = RelayedBroker(relay)
        relay.bind(broker, lambda: None, lambda _task_id: None)
        await relay.start()
        try:
            task = await api.create_task("alice", resource_url=origin.url(stream))
            with broker.subscribe(task_id=task.id) as watcher:
                start = api.stub.StartTask(pb.StartTaskRequest(task_id=task.id), metadata=api.auth("alice"))
                await until(start, lambda e: e.segments_done == 5)
                assert (await anext(watcher)).status is TaskStatus.PROCESSING  # relayed from B

                caplog.set_level(logging.INFO, logger="download_server.adapters.pg_notify")
                await asyncio.to_thread(terminate_listeners, database_url)
                await asyncio.wait_for(relay.wait_deaf(), timeout=10)  # A notices at once: the socket closes
                gate.set()  # B completes while A is deaf: the COMPLETED notification never reaches A
                assert [r.event.status async for r in start][-1] == pb.TASK_STATUS_COMPLETED

                async with asyncio.timeout(30):
                    async for event in watcher:
                        if event.status.ends_stream:
                            break
                assert event.status is TaskStatus.COMPLETED and event.segments_done == 6
                assert event.message == ""  # built from the stored row (B's own event says how the run began)
                assert relay.listening
                assert "re-reading the tasks local watchers follow" in caplog.text
        finally:
            await relay.close()
            database.close()


def terminate_listeners(database_url: str) -> None:
    """What a PostgreSQL restart does to a LISTEN connection, without disturbing the rest."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
                )
            ).all()
        assert len(ended) == 2, ended  # the server's and replica A's
    finally:
        engine.dispose()
