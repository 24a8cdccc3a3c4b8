"""DOWNLOAD_USER_QUOTA_BYTES: counted in the database; starts over it are RESOURCE_EXHAUSTED, QUOTA_EXCEEDED
(issue 15, finding 3: there was no disk quota)."""

from __future__ import annotations

from pathlib import Path

import grpc

from mediadl.download.v1 import download_pb2 as pb
from tests.download.api import download_settings, running_download_server
from tests.support.status import rpc_failure

ALICE, BOB = "alice-0017", "bob-0017"


async def _first(call: grpc.aio.UnaryStreamCall) -> pb.TaskEvent:  # type: ignore[type-arg]
    async for response in call:
        call.cancel()
        return response.event  # type: ignore[no-any-return]
    raise AssertionError("no event")


async def test_a_user_at_the_quota_cannot_start_or_retry(database_url: str, tmp_path: Path) -> None:
    settings = download_settings(database_url, tmp_path / "storage", DOWNLOAD_USER_QUOTA_BYTES="1000")
    async with running_download_server(settings) as api:
        full = await api.create_task(ALICE)
        stored = await api.store.get_task(full.id)
        stored.bytes_downloaded = 1000
        await api.store.save_task(stored)
        fresh = await api.create_task(ALICE)
        refused = await rpc_failure(
            _first(api.stub.StartTask(pb.StartTaskRequest(task_id=fresh.id), metadata=api.auth(ALICE)))
        )
        assert (refused.code, refused.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "QUOTA_EXCEEDED")
        assert "1000" in refused.message and "DOWNLOAD_USER_QUOTA_BYTES" in refused.message
        assert (await api.store.get_task(fresh.id)).status.value == "PENDING"  # nothing happened

        # Another user is not counted against Alice's quota.
        bobs = await api.create_task(BOB)
        event = await _first(api.stub.StartTask(pb.StartTaskRequest(task_id=bobs.id), metadata=api.auth(BOB)))
        assert event.task_id == bobs.id
