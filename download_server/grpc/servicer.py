"""DownloadService over gRPC: each method converts the request, calls one use case and converts the answer.

Errors are raised, not handled: ErrorBoundaryInterceptor turns them into statuses. The caller's id comes
from the AuthInterceptor through mediadl_common.context; no method here reads tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, NoReturn, TypeAlias

import grpc

from download_server.grpc import converters as conv
from download_server.services.failures import FailureService
from download_server.services.tasks import TaskService
from download_server.services.videos import VideoService
from mediadl.download.v1 import download_pb2 as pb
from mediadl.download.v1 import download_pb2_grpc
from mediadl_common.context import current_user_id
from mediadl_common.grpc_status import abort, make_status

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["DownloadService"].full_name


async def _not_yet(context: Context, method: str) -> NoReturn:
    # An honest UNIMPLEMENTED until the download engine is wired in, rather than a stream that never moves.
    message = f"{method} is not available yet: the download engine is not part of this server build"
    await abort(context, make_status(grpc.StatusCode.UNIMPLEMENTED, message, reason="ENGINE_NOT_AVAILABLE"))
    raise AssertionError("abort() returned")  # pragma: no cover - abort always raises


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

    # Progress streams: the engine's part.

    async def StartTask(  # noqa: N802
        self, request: pb.StartTaskRequest, context: Context
    ) -> AsyncIterator[pb.StartTaskResponse]:
        await _not_yet(context, "StartTask")
        yield pb.StartTaskResponse()  # pragma: no cover - makes this an async generator, as streams must be

    async def RetryTask(  # noqa: N802
        self, request: pb.RetryTaskRequest, context: Context
    ) -> AsyncIterator[pb.RetryTaskResponse]:
        await _not_yet(context, "RetryTask")
        yield pb.RetryTaskResponse()  # pragma: no cover

    async def WatchTask(  # noqa: N802
        self, request: pb.WatchTaskRequest, context: Context
    ) -> AsyncIterator[pb.WatchTaskResponse]:
        await _not_yet(context, "WatchTask")
        yield pb.WatchTaskResponse()  # pragma: no cover

    async def WatchTasks(  # noqa: N802
        self, request: pb.WatchTasksRequest, context: Context
    ) -> AsyncIterator[pb.WatchTasksResponse]:
        await _not_yet(context, "WatchTasks")
        yield pb.WatchTasksResponse()  # pragma: no cover

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
        await _not_yet(context, "RetryFailure")

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
