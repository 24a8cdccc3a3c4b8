"""The client's DownloadService methods against the real servers: the unary task lifecycle, paging,
failures and videos, ownership, and input errors."""

from __future__ import annotations

import uuid

import pytest

from clients import (
    AsyncClient,
    FailedPreconditionError,
    FailureStatus,
    InvalidArgumentError,
    NotFoundError,
    ResourceType,
    Task,
    TaskStatus,
)
from clients.testing import MediadlServers

URL = "https://media.example.com/live/index.m3u8"


async def new_task(client: AsyncClient, *, liveroom_id: str = "room1", liveroom_url: str = "") -> Task:
    return await client.create_task(
        video_id=str(uuid.uuid4()),
        liveroom_id=liveroom_id,
        resource_url=URL,
        resource_type=ResourceType.HLS,
        liveroom_title="Friday stream",
        liveroom_url=liveroom_url,
    )


async def test_task_lifecycle(servers: MediadlServers) -> None:
    client = await servers.logged_in_client()
    me = await client.whoami()
    task = await new_task(client, liveroom_url="https://live.example.com/room1")
    assert (task.status, task.resource_type, task.user_id) == (TaskStatus.PENDING, ResourceType.HLS, me.id)
    assert (task.progress, task.bytes_total, task.retry_count, task.complete_time) == (0.0, 0, 0, None)
    assert task.create_time is not None and task.create_time.tzinfo is not None

    assert await client.get_task(task.id) == task
    renamed = await client.update_task(task.id, liveroom_title="Saturday stream")
    assert (renamed.liveroom_title, renamed.liveroom_url) == ("Saturday stream", "https://live.example.com/room1")

    with pytest.raises(FailedPreconditionError):
        await client.pause(task.id)  # PENDING cannot pause
    cancelled = await client.cancel(task.id)
    assert cancelled.status is TaskStatus.CANCELLED
    with pytest.raises(FailedPreconditionError):
        await client.resume(task.id)

    await client.delete_task(task.id)
    with pytest.raises(NotFoundError):
        await client.get_task(task.id)


async def test_paging_filters_and_iterate_all(servers: MediadlServers) -> None:
    client = await servers.logged_in_client()
    created = [await new_task(client, liveroom_id=f"room{i}") for i in range(5)]
    await client.cancel(created[0].id)

    first = await client.list_tasks(page_size=2)
    assert (len(first), first.total_size) == (2, 5) and first.next_page_token
    assert [t.id for t in first] == [t.id for t in reversed(created)][:2]  # newest first by default
    second = await client.list_tasks(page_size=2, page_token=first.next_page_token)
    assert not {t.id for t in first} & {t.id for t in second}

    everything = [t.id async for t in client.iter_tasks(order_by="create_time")]
    assert everything == [t.id for t in created]
    cancelled = await client.list_tasks(statuses=[TaskStatus.CANCELLED])
    assert [t.id for t in cancelled] == [created[0].id]
    with pytest.raises(InvalidArgumentError):
        await client.list_tasks(page_token="not-a-token")


async def test_tasks_of_another_user_do_not_exist_for_you(servers: MediadlServers) -> None:
    alice = await servers.logged_in_client()
    bob = await servers.logged_in_client()
    task = await new_task(alice)
    for call in (bob.get_task(task.id), bob.cancel(task.id), bob.delete_task(task.id), bob.list_task_failures(task.id)):
        with pytest.raises(NotFoundError):
            await call
    assert (await bob.list_tasks()).total_size == 0
    assert (await alice.get_task(task.id)).status is TaskStatus.PENDING


async def test_invalid_input_names_the_field(servers: MediadlServers) -> None:
    client = await servers.logged_in_client()
    with pytest.raises(InvalidArgumentError) as caught:
        await client.create_task(
            video_id="not-a-uuid", liveroom_id="r", resource_url="ftp://example.com/x", resource_type=ResourceType.MP4
        )
    assert {"video_id", "resource_url"} <= {v.field for v in caught.value.field_violations}
    with pytest.raises(InvalidArgumentError) as unspecified:
        await client.create_task(
            video_id=str(uuid.uuid4()), liveroom_id="r", resource_url=URL, resource_type=ResourceType.UNSPECIFIED
        )
    assert "resource_type" in {v.field for v in unspecified.value.field_violations}


async def test_failures_and_videos(servers: MediadlServers) -> None:
    client = await servers.logged_in_client()
    task = await new_task(client)
    failures = [
        await client.create_failure(task.id, error_type="http", error_message="503", segment_index=i, http_status=503)
        for i in range(3)
    ]
    assert failures[0].status is FailureStatus.PENDING and failures[0].http_status == 503
    assert (await client.get_failure(failures[1].id)) == failures[1]
    listed = [f.id async for f in client.iter_task_failures(task.id)]
    assert sorted(listed) == sorted(f.id for f in failures)  # the API does not fix the order of failures

    abandoned = await client.abandon_failure(failures[0].id, task_id=task.id)
    assert abandoned.status is FailureStatus.ABANDONED
    pending = await client.list_failures(statuses=[FailureStatus.PENDING])
    assert {f.id for f in pending} == {failures[1].id, failures[2].id} and pending.total_size == 2
    other = await new_task(client)
    with pytest.raises((InvalidArgumentError, NotFoundError, FailedPreconditionError)):
        await client.abandon_failure(failures[1].id, task_id=other.id)  # the task must match

    video = await client.create_video(task.id, file_path=f"hls/{task.id}/index.m3u8", file_size=2048, format="hls")
    assert (video.task_id, video.video_id, video.file_size) == (task.id, task.video_id, 2048)
    assert await client.get_video(task.video_id) == video
    assert [v.id async for v in client.iter_task_videos(task.id)] == [video.id]
