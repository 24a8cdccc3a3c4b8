"""DownloadService over gRPC: each method converts the request, calls one use case and converts the answer.

Errors are raised, not handled: ErrorBoundaryInterceptor turns them into statuses. The caller's id comes
from the AuthInterceptor through mediadl_common.context; no method here reads tokens. Streaming methods
are async generators (the shared interceptors wrap them); a client that goes away only ends its stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, TypeAlias

import grpc

from download_server.grpc import converters as conv
from download_server.services.failures import FailureService
from download_server.services.tasks import TaskService
from download_server.services.videos import VideoService
from mediadl.download.v1 import download_pb2 as pb
from mediadl.download.v1 import download_pb2_grpc
from mediadl_common.context import current_user_id

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["DownloadService"].full_name


class DownloadServicer(download_pb2_grpc.DownloadServiceServicer):  # type: ignore[misc]
    def __init__(self, tasks: TaskService, failures: FailureService, videos: VideoService) -> None:
        self._tasks = tasks
        self._failures = failures
        self._videos = videos

    # Tasks

    async def CreateTask(self, request: pb.CreateTaskRequest, context: Context) -> pb.CreateTaskResponse:  # noqa: N802
        task = await self._tasks.create_task(current_user_id(), conv.new_task(request))
        return pb.CreateTaskResponse(task=conv.task_to_proto(task))

    async def ListTasks(self, request: pb.ListTasksRequest, context: Context) -> pb.ListTasksResponse:  # noqa: N802
        page = await self._tasks.list_tasks(current_user_id(), conv.task_list_request(request))
        return pb.ListTasksResponse(
            tasks=[conv.task_to_proto(t) for t in page.items],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def GetTask(self, request: pb.GetTaskRequest, context: Context) -> pb.GetTaskResponse:  # noqa: N802
        task = await self._tasks.get_task(current_user_id(), request.task_id)
        return pb.GetTaskResponse(task=conv.task_to_proto(task))

    async def UpdateTask(self, request: pb.UpdateTaskRequest, context: Context) -> pb.UpdateTaskResponse:  # noqa: N802
        task = await self._tasks.update_task(current_user_id(), conv.task_changes(request))
        return pb.UpdateTaskResponse(task=conv.task_to_proto(task))

    async def DeleteTask(self, request: pb.DeleteTaskRequest, context: Context) -> pb.DeleteTaskResponse:  # noqa: N802
        await self._tasks.delete_task(current_user_id(), request.task_id, delete_files=request.delete_files)
        return pb.DeleteTaskResponse()

    async def PauseTask(self, request: pb.PauseTaskRequest, context: Context) -> pb.PauseTaskResponse:  # noqa: N802
        task = await self._tasks.pause_task(current_user_id(), request.task_id)
        return pb.PauseTaskResponse(task=conv.task_to_proto(task))

    async def ResumeTask(self, request: pb.ResumeTaskRequest, context: Context) -> pb.ResumeTaskResponse:  # noqa: N802
        task = await self._tasks.resume_task(current_user_id(), request.task_id)
        return pb.ResumeTaskResponse(task=conv.task_to_proto(task))

    async def CancelTask(self, request: pb.CancelTaskRequest, context: Context) -> pb.CancelTaskResponse:  # noqa: N802
        task = await self._tasks.cancel_task(current_user_id(), request.task_id)
        return pb.CancelTaskResponse(task=conv.task_to_proto(task))

    # Progress streams. aclosing: a client that leaves drops its subscription now, not at garbage collection.

    async def StartTask(  # noqa: N802
        self, request: pb.StartTaskRequest, context: Context
    ) -> AsyncIterator[pb.StartTaskResponse]:
        async with aclosing(self._tasks.start_task(current_user_id(), request.task_id)) as events:
            async for event in events:
                yield conv.event_response(pb.StartTaskResponse, event)

    async def RetryTask(  # noqa: N802
        self, request: pb.RetryTaskRequest, context: Context
    ) -> AsyncIterator[pb.RetryTaskResponse]:
        async with aclosing(self._tasks.retry_task(current_user_id(), request.task_id)) as events:
            async for event in events:
                yield conv.event_response(pb.RetryTaskResponse, event)

    async def WatchTask(  # noqa: N802
        self, request: pb.WatchTaskRequest, context: Context
    ) -> AsyncIterator[pb.WatchTaskResponse]:
        async with aclosing(self._tasks.watch_task(current_user_id(), request.task_id)) as events:
            async for event in events:
                yield conv.event_response(pb.WatchTaskResponse, event)

    async def WatchTasks(  # noqa: N802
        self, request: pb.WatchTasksRequest, context: Context
    ) -> AsyncIterator[pb.WatchTasksResponse]:
        statuses = conv.task_statuses_from_proto(request.statuses)
        async with aclosing(self._tasks.watch_tasks(current_user_id(), statuses)) as events:
            async for event in events:
                yield conv.event_response(pb.WatchTasksResponse, event)

    # Failures

    async def CreateFailure(  # noqa: N802
        self, request: pb.CreateFailureRequest, context: Context
    ) -> pb.CreateFailureResponse:
        failure = await self._failures.create_failure(current_user_id(), conv.new_failure(request))
        return pb.CreateFailureResponse(failure=conv.failure_to_proto(failure))

    async def ListTaskFailures(  # noqa: N802
        self, request: pb.ListTaskFailuresRequest, context: Context
    ) -> pb.ListTaskFailuresResponse:
        page = await self._failures.list_task_failures(current_user_id(), conv.failure_list_request(request))
        return pb.ListTaskFailuresResponse(
            failures=[conv.failure_to_proto(f) for f in page.items],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def ListFailures(self, request: pb.ListFailuresRequest, context: Context) -> pb.ListFailuresResponse:  # noqa: N802
        page = await self._failures.list_failures(current_user_id(), conv.failure_list_request(request))
        return pb.ListFailuresResponse(
            failures=[conv.failure_to_proto(f) for f in page.items],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def GetFailure(self, request: pb.GetFailureRequest, context: Context) -> pb.GetFailureResponse:  # noqa: N802
        failure = await self._failures.get_failure(current_user_id(), request.failure_id)
        return pb.GetFailureResponse(failure=conv.failure_to_proto(failure))

    async def RetryFailure(  # noqa: N802
        self, request: pb.RetryFailureRequest, context: Context
    ) -> pb.RetryFailureResponse:
        failure = await self._failures.retry_failure(current_user_id(), request.failure_id, request.task_id)
        return pb.RetryFailureResponse(failure=conv.failure_to_proto(failure))

    async def AbandonFailure(  # noqa: N802
        self, request: pb.AbandonFailureRequest, context: Context
    ) -> pb.AbandonFailureResponse:
        failure = await self._failures.abandon_failure(current_user_id(), request.failure_id, request.task_id)
        return pb.AbandonFailureResponse(failure=conv.failure_to_proto(failure))

    # Videos

    async def CreateVideo(self, request: pb.CreateVideoRequest, context: Context) -> pb.CreateVideoResponse:  # noqa: N802
        video = await self._videos.create_video(current_user_id(), conv.new_video(request))
        return pb.CreateVideoResponse(video=conv.video_to_proto(video))

    async def ListTaskVideos(  # noqa: N802
        self, request: pb.ListTaskVideosRequest, context: Context
    ) -> pb.ListTaskVideosResponse:
        page = await self._videos.list_task_videos(
            current_user_id(), request.task_id, request.page_size, request.page_token
        )
        return pb.ListTaskVideosResponse(
            videos=[conv.video_to_proto(v) for v in page.items],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def GetVideo(self, request: pb.GetVideoRequest, context: Context) -> pb.GetVideoResponse:  # noqa: N802
        video = await self._videos.get_video(current_user_id(), request.video_id)
        return pb.GetVideoResponse(video=conv.video_to_proto(video))

    async def ReadVideo(  # noqa: N802
        self, request: pb.ReadVideoRequest, context: Context
    ) -> AsyncIterator[pb.ReadVideoResponse]:
        async with aclosing(self._videos.read_video(current_user_id(), conv.video_read(request))) as chunks:
            async for chunk in chunks:
                yield pb.ReadVideoResponse(
                    data=chunk.data, offset=chunk.offset, total_size=chunk.total_size, content_type=chunk.content_type
                )
