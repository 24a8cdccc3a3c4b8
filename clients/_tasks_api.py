"""Task methods of the client: CRUD, state changes, and the progress streams (start, retry, watch)."""

# ruff: noqa: ASYNC109  -- `timeout` is the gRPC deadline passed to the call, grpc's own name for it

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from typing import Any

from google.protobuf import field_mask_pb2

from clients import _convert
from clients._pages import ALL_PAGES_SIZE, every_item
from clients._transport import Transport
from clients.models import OutputFormat, Page, ResourceType, Task, TaskEvent, TaskStatus
from clients.streams import TaskEventStream
from mediadl.download.v1 import download_pb2 as pb


class TasksApi:
    _transport: Transport

    async def create_task(
        self,
        *,
        video_id: str,
        liveroom_id: str,
        resource_url: str,
        resource_type: ResourceType,
        liveroom_title: str = "",
        liveroom_url: str = "",
        output_format: OutputFormat = OutputFormat.UNSPECIFIED,
        max_duration_seconds: int = 0,
        timeout: float | None = None,
    ) -> Task:
        """Create a PENDING task; nothing is downloaded until :meth:`start`. HLS tasks may ask for one MP4
        of the whole (``output_format=OutputFormat.MP4``) and a live recording for a ``max_duration_seconds``.

        >>> task = await client.create_task(video_id=str(uuid.uuid4()), liveroom_id="room1",
        ...     resource_url="https://cdn.example.com/live/index.m3u8", resource_type=ResourceType.HLS)
        >>> task.status
        <TaskStatus.PENDING: 'PENDING'>
        """
        request = pb.CreateTaskRequest(
            video_id=video_id,
            liveroom_id=liveroom_id,
            liveroom_title=liveroom_title,
            liveroom_url=liveroom_url,
            resource_url=resource_url,
            resource_type=_convert.resource_type_to_proto(ResourceType(resource_type)),
            output_format=_convert.output_format_to_proto(OutputFormat(output_format)),
            max_duration_seconds=max_duration_seconds,
        )
        return await self._task_call(self._transport.download.CreateTask, request, timeout)

    async def list_tasks(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        statuses: Iterable[TaskStatus] = (),
        order_by: str = "",
        timeout: float | None = None,
    ) -> Page[Task]:
        """One page of your tasks (newest first unless `order_by` says otherwise: "create_time", "update_time desc"...).

        >>> page = await client.list_tasks(statuses=[TaskStatus.FAILED], page_size=50)
        >>> page.total_size, page.next_page_token
        """
        request = pb.ListTasksRequest(
            page_size=page_size,
            page_token=page_token,
            statuses=[_convert.task_status_to_proto(TaskStatus(s)) for s in statuses],
            order_by=order_by,
        )
        response = await self._transport.unary(self._transport.download.ListTasks, request, timeout=timeout)
        return _convert.page(response.tasks, _convert.task, response.next_page_token, response.total_size)

    def iter_tasks(self, *, statuses: Iterable[TaskStatus] = (), order_by: str = "") -> AsyncIterator[Task]:
        """Every task across all pages.

        >>> async for task in client.iter_tasks(statuses=[TaskStatus.PROCESSING]):
        ...     print(task.id, task.progress)
        """
        wanted = tuple(statuses)
        return every_item(
            lambda token: self.list_tasks(
                page_size=ALL_PAGES_SIZE, page_token=token, statuses=wanted, order_by=order_by
            )
        )

    async def get_task(self, task_id: str, *, timeout: float | None = None) -> Task:
        """One task by id (NotFoundError if it is not yours).

        >>> task = await client.get_task(task_id)
        """
        return await self._task_call(self._transport.download.GetTask, pb.GetTaskRequest(task_id=task_id), timeout)

    async def update_task(
        self,
        task_id: str,
        *,
        liveroom_title: str | None = None,
        liveroom_url: str | None = None,
        resource_url: str | None = None,
        timeout: float | None = None,
    ) -> Task:
        """Change the fields given (None leaves a field alone). resource_url may change only while the task is
        PENDING, FAILED or CANCELLED (else FailedPreconditionError).

        >>> task = await client.update_task(task_id, liveroom_title="Friday stream")
        """
        fields = {"liveroom_title": liveroom_title, "liveroom_url": liveroom_url, "resource_url": resource_url}
        given = {name: value for name, value in fields.items() if value is not None}
        request = pb.UpdateTaskRequest(
            task_id=task_id, **given, update_mask=field_mask_pb2.FieldMask(paths=sorted(given))
        )
        return await self._task_call(self._transport.download.UpdateTask, request, timeout)

    async def delete_task(self, task_id: str, *, delete_files: bool = False, timeout: float | None = None) -> None:
        """Delete a task with its failures and video record (and its files with `delete_files`).

        >>> await client.delete_task(task_id, delete_files=True)
        """
        request = pb.DeleteTaskRequest(task_id=task_id, delete_files=delete_files)
        await self._transport.unary(self._transport.download.DeleteTask, request, timeout=timeout)

    async def pause(self, task_id: str, *, timeout: float | None = None) -> Task:
        """PROCESSING -> PAUSED; finished segments are kept. Other states: FailedPreconditionError.

        >>> (await client.pause(task_id)).status
        <TaskStatus.PAUSED: 'PAUSED'>
        """
        return await self._task_call(self._transport.download.PauseTask, pb.PauseTaskRequest(task_id=task_id), timeout)

    async def resume(self, task_id: str, *, timeout: float | None = None) -> Task:
        """PAUSED -> PROCESSING; nothing already on disk is fetched again.

        >>> task = await client.resume(task_id)
        """
        request = pb.ResumeTaskRequest(task_id=task_id)
        return await self._task_call(self._transport.download.ResumeTask, request, timeout)

    async def cancel(self, task_id: str, *, timeout: float | None = None) -> Task:
        """PENDING, PROCESSING or PAUSED -> CANCELLED.

        >>> task = await client.cancel(task_id)
        """
        request = pb.CancelTaskRequest(task_id=task_id)
        return await self._task_call(self._transport.download.CancelTask, request, timeout)

    def start(self, task_id: str, *, timeout: float | None = None) -> TaskEventStream:
        """Start the download (or attach if it already runs) and stream its progress until it ends or pauses.

        >>> async with client.start(task_id) as events:
        ...     async for event in events:
        ...         print(event.status, f"{event.progress:.0%}")
        """
        request = pb.StartTaskRequest(task_id=task_id)
        return self._events(self._transport.download.StartTask, request, timeout)

    def retry(self, task_id: str, *, timeout: float | None = None) -> TaskEventStream:
        """Fetch again only the segments that failed (task FAILED or PARTIAL_COMPLETED) and stream progress.

        >>> async for event in client.retry(task_id):
        ...     last = event
        """
        request = pb.RetryTaskRequest(task_id=task_id)
        return self._events(self._transport.download.RetryTask, request, timeout)

    def watch(self, task_id: str, *, timeout: float | None = None) -> TaskEventStream:
        """Attach to one task: its current state at once, then progress until it ends or pauses.

        >>> async for event in client.watch(task_id):
        ...     print(event.bytes_downloaded, event.speed_bytes_per_second)
        """
        request = pb.WatchTaskRequest(task_id=task_id)
        return self._events(self._transport.download.WatchTask, request, timeout)

    def watch_all(self, *, statuses: Iterable[TaskStatus] = (), timeout: float | None = None) -> TaskEventStream:
        """Every task of yours, for dashboards; it never ends by itself (close it, or use ``async with``).

        >>> async with client.watch_all(statuses=[TaskStatus.PROCESSING]) as events:
        ...     async for event in events:
        ...         table[event.task_id] = event
        """
        request = pb.WatchTasksRequest(statuses=[_convert.task_status_to_proto(TaskStatus(s)) for s in statuses])
        return self._events(self._transport.download.WatchTasks, request, timeout)

    async def _task_call(self, rpc: Any, request: Any, timeout: float | None) -> Task:
        response = await self._transport.unary(rpc, request, timeout=timeout)
        return _convert.task(response.task)

    def _events(self, rpc: Any, request: Any, timeout: float | None) -> TaskEventStream:
        async def events() -> AsyncGenerator[TaskEvent, None]:
            # aclosing: closing this generator must close the RPC's generator now, not at garbage collection.
            async with contextlib.aclosing(self._transport.stream(rpc, request, timeout=timeout)) as responses:
                async for response in responses:
                    yield _convert.task_event(response.event)

        return TaskEventStream(events())
