"""How a live recording ends through the gRPC API, on SQLite and PostgreSQL: a playlist that idles (answers,
never changes), one that stops answering (connection refused), and media that left the window meanwhile."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from download_server.engine.settings import EngineSettings
from mediadl.download.v1 import download_pb2 as pb
from tests.download.engine.test_live import playlist
from tests.download.engine_api.conftest import ServerFactory
from tests.download.engine_api.flows import Downloads, events_of, until
from tests.download.engine_api.test_live_api import swap

LIVE = "live/edge.m3u8"
GRACE = 1.0  # a few backed-off polls at the tests' 20 ms poll interval, short enough to wait out


def short_grace(engine: EngineSettings) -> EngineSettings:
    return replace(engine, live_outage_seconds=GRACE)


@pytest.fixture
async def live(serve: ServerFactory, database_url: str) -> AsyncIterator[Downloads]:
    async with serve(database_url, engine_overrides=short_grace) as flows:
        yield flows


def closed_port() -> int:
    """A local port nothing listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def recording(live: Downloads) -> tuple[pb.Task, object]:
    """A live task that recorded sequences 0-3; its StartTask stream is left open."""
    live.origin.sequence(LIVE, [playlist(0, 1), playlist(0, 3)])
    task = await live.create(LIVE)
    stream = live.start_stream(task.id)
    await until(stream, lambda e: e.segments_done == 4)
    return task, stream


def local_segments(live: Downloads, task_id: str) -> list[str]:
    text = live.storage.playlist_path(task_id).read_text()
    return [line for line in text.splitlines() if line.startswith("ts/")]


async def test_an_idle_playlist_ends_the_recording_after_the_grace(live: Downloads) -> None:
    task, stream = await recording(live)
    polls = live.origin.requests[LIVE]
    events = await events_of(stream)  # the playlist keeps answering 200 with 0-3, never ENDLIST

    assert events[-1].status == pb.TASK_STATUS_COMPLETED
    assert "stopped changing" in events[-1].message and "recording ended" in events[-1].message
    assert any("live playlist unchanged for" in e.message for e in events)  # it waited, announced
    assert live.origin.requests[LIVE] - polls >= 3  # polled on within the grace, not ended at the first repeat
    done = await live.get(task.id)
    assert (done.segments_total, done.segments_done) == (4, 4)
    assert not await live.failures(task.id)
    assert local_segments(live, task.id) == [f"ts/{i}.ts" for i in range(4)]
    assert "#EXT-X-ENDLIST" in live.storage.playlist_path(task.id).read_text()


async def test_an_unanswered_playlist_ends_the_recording_after_the_grace(live: Downloads) -> None:
    task, stream = await recording(live)
    refused = f"http://127.0.0.1:{closed_port()}/live.m3u8"
    await live.api.stub.UpdateTask(swap(task.id, refused), metadata=live.md())  # nothing answers there
    events = await events_of(stream)

    assert events[-1].status == pb.TASK_STATUS_COMPLETED
    assert "stopped answering" in events[-1].message and "recording ended" in events[-1].message
    waits = [e.message for e in events if e.message.startswith("live playlist ") and e.message.endswith(" of 1")]
    assert waits  # the outage was waited out with its countdown, not taken as the end
    done = await live.get(task.id)
    assert (done.segments_total, done.segments_done) == (4, 4)
    assert not await live.failures(task.id)
    assert "#EXT-X-ENDLIST" in live.storage.playlist_path(task.id).read_text()


async def test_media_that_left_the_window_meanwhile_is_one_abandoned_live_gap(live: Downloads) -> None:
    task, stream = await recording(live)
    live.origin.fail(LIVE, status=503, times=3)
    live.origin.sequence(LIVE, [playlist(7, 9, ended=True)])  # sequences 4-6 went by while it failed
    events = await events_of(stream)

    assert events[-1].status == pb.TASK_STATUS_PARTIAL_COMPLETED
    (gap,) = await live.failures(task.id)
    assert (gap.error_type, gap.status, gap.segment_index) == ("live_gap", pb.FAILURE_STATUS_ABANDONED, 4)
    assert "media sequences 4-6 (3 segment(s), about 3 s)" in gap.error_message
    done = await live.get(task.id)
    assert done.segments_done == 7  # the lost media were never listed to us: a record, not segments
    text = live.storage.playlist_path(task.id).read_text()
    assert text.count("#EXT-X-DISCONTINUITY") == 1
    assert text.index("#EXT-X-DISCONTINUITY") < text.index("ts/7.ts")
    assert local_segments(live, task.id) == [f"ts/{i}.ts" for i in (0, 1, 2, 3, 7, 8, 9)]
