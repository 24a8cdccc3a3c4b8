"""Helpers of the stream tests: skip while the server answers UNIMPLEMENTED, and a fixture-origin task."""

from __future__ import annotations

import uuid

import pytest

from clients import AsyncClient, ResourceType, Task, TaskEvent, TaskEventStream, UnimplementedError
from tests.support.origin import Origin


async def first_or_skip(events: TaskEventStream) -> TaskEvent:
    """The stream's first event; skips the test (with the server's reason) if streams are not served yet."""
    try:
        return await anext(events)
    except UnimplementedError as exc:
        await events.aclose()
        pytest.skip(f"the download server does not serve progress streams yet: {exc.message}")


async def skip_unless_streams(client: AsyncClient, task_id: str) -> None:
    """Probe WatchTask once; the CLI tests use it before spawning a process that would just exit 1."""
    async with client.watch(task_id) as events:
        await first_or_skip(events)


async def hls_task(client: AsyncClient, origin: Origin, *, title: str = "fixture stream") -> Task:
    return await client.create_task(
        video_id=str(uuid.uuid4()),
        liveroom_id="fixture",
        liveroom_title=title,
        resource_url=origin.url("hls_ts/index.m3u8"),
        resource_type=ResourceType.HLS,
    )
