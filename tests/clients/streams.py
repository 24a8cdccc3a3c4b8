"""Helpers of the stream tests: a task that downloads the HLS fixture from the local origin."""

from __future__ import annotations

import uuid

from clients import AsyncClient, ResourceType, Task
from tests.support.origin import Origin


async def hls_task(client: AsyncClient, origin: Origin, *, title: str = "fixture stream") -> Task:
    return await client.create_task(
        video_id=str(uuid.uuid4()),
        liveroom_id="fixture",
        liveroom_title=title,
        resource_url=origin.url("hls_ts/index.m3u8"),
        resource_type=ResourceType.HLS,
    )
