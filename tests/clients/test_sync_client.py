"""The blocking facade: same methods and errors as the async client, run from a plain thread."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from clients import NotFoundError, ResourceType, TaskStatus, connect_sync
from clients.testing import TEST_PASSWORD, MediadlServers


def scenario(auth_addr: str, download_addr: str) -> list[str]:
    """What a script would do; returns the ids it saw across pages."""
    with connect_sync(auth_addr, download_addr) as client:
        client.register(email="sync@example.com", username="sync_user", password=TEST_PASSWORD)
        me = client.login("sync@example.com", TEST_PASSWORD)
        assert client.whoami().id == me.id and client.is_logged_in
        created = [
            client.create_task(
                video_id=str(uuid.uuid4()),
                liveroom_id=f"r{i}",
                resource_url="https://media.example.com/a.mp4",
                resource_type=ResourceType.MP4,
            )
            for i in range(3)
        ]
        assert client.get_task(created[0].id).status is TaskStatus.PENDING
        with pytest.raises(NotFoundError):
            client.get_task(str(uuid.uuid4()))
        seen = [task.id for task in client.iter_tasks(order_by="create_time")]
        assert seen == [t.id for t in created]
        # Leaving an iterator early closes it (and its RPC) at once.
        with contextlib.closing(client.iter_tasks()) as tasks:
            next(tasks)
        client.logout()
        assert not client.is_logged_in
        return seen


async def test_sync_client_from_a_thread(sqlite_servers: MediadlServers) -> None:
    # The servers run on this test's loop: the blocking client must run elsewhere, as in a real script.
    seen = await asyncio.to_thread(scenario, sqlite_servers.auth_addr, sqlite_servers.download_addr)
    assert len(seen) == 3
