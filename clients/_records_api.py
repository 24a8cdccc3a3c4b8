"""Failure and video methods of the client: list, get, retry or abandon failures; list and get videos."""

# ruff: noqa: ASYNC109  -- `timeout` is the gRPC deadline passed to the call, grpc's own name for it

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from clients import _convert
from clients._pages import ALL_PAGES_SIZE, every_item
from clients._transport import Transport
from clients.models import Failure, FailureStatus, Page, Video
from mediadl.download.v1 import download_pb2 as pb


def _statuses(statuses: Iterable[FailureStatus]) -> list[Any]:
    return [_convert.failure_status_to_proto(FailureStatus(s)) for s in statuses]


class RecordsApi:
    _transport: Transport

    async def create_failure(
        self,
        task_id: str,
        *,
        error_type: str,
        error_message: str = "",
        segment_index: int = -1,
        segment_url: str = "",
        http_status: int = 0,
        timeout: float | None = None,
    ) -> Failure:
        """Record a failure by hand (the engine records its own). ``segment_index`` -1: the whole resource.

        >>> failure = await client.create_failure(task_id, error_type="http", http_status=503, segment_index=2)
        """
        request = pb.CreateFailureRequest(
            task_id=task_id,
            segment_index=segment_index,
            segment_url=segment_url,
            error_type=error_type,
            error_message=error_message,
            http_status=http_status,
        )
        response = await self._transport.unary(self._transport.download.CreateFailure, request, timeout=timeout)
        return _convert.failure(response.failure)

    async def list_failures(
        self,
        *,
        task_id: str | None = None,
        statuses: Iterable[FailureStatus] = (),
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> Page[Failure]:
        """One page of your failures, optionally only one task's.

        >>> page = await client.list_failures(statuses=[FailureStatus.PENDING])
        """
        request = pb.ListFailuresRequest(
            page_size=page_size, page_token=page_token, statuses=_statuses(statuses), task_id=task_id or ""
        )
        response = await self._transport.unary(self._transport.download.ListFailures, request, timeout=timeout)
        return _convert.page(response.failures, _convert.failure, response.next_page_token, response.total_size)

    async def list_task_failures(
        self,
        task_id: str,
        *,
        statuses: Iterable[FailureStatus] = (),
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> Page[Failure]:
        """One page of one task's failures (NotFoundError if the task is not yours).

        >>> page = await client.list_task_failures(task_id)
        """
        request = pb.ListTaskFailuresRequest(
            task_id=task_id, page_size=page_size, page_token=page_token, statuses=_statuses(statuses)
        )
        response = await self._transport.unary(self._transport.download.ListTaskFailures, request, timeout=timeout)
        return _convert.page(response.failures, _convert.failure, response.next_page_token, response.total_size)

    def iter_failures(
        self, *, task_id: str | None = None, statuses: Iterable[FailureStatus] = ()
    ) -> AsyncIterator[Failure]:
        """Every failure across all pages.

        >>> open_ones = [f async for f in client.iter_failures(statuses=[FailureStatus.PENDING])]
        """
        wanted = tuple(statuses)
        return every_item(
            lambda token: self.list_failures(
                task_id=task_id, statuses=wanted, page_size=ALL_PAGES_SIZE, page_token=token
            )
        )

    def iter_task_failures(self, task_id: str, *, statuses: Iterable[FailureStatus] = ()) -> AsyncIterator[Failure]:
        """Every failure of one task across all pages.

        >>> segments = [f.segment_index async for f in client.iter_task_failures(task_id)]
        """
        wanted = tuple(statuses)
        return every_item(
            lambda token: self.list_task_failures(task_id, statuses=wanted, page_size=ALL_PAGES_SIZE, page_token=token)
        )

    async def get_failure(self, failure_id: str, *, timeout: float | None = None) -> Failure:
        """One failure record by id.

        >>> failure = await client.get_failure(failure_id)
        """
        request = pb.GetFailureRequest(failure_id=failure_id)
        response = await self._transport.unary(self._transport.download.GetFailure, request, timeout=timeout)
        return _convert.failure(response.failure)

    async def retry_failure(
        self, failure_id: str, *, task_id: str | None = None, timeout: float | None = None
    ) -> Failure:
        """Fetch that one segment again now; the record after the attempt (RESOLVED on success).

        >>> (await client.retry_failure(failure_id)).status
        <FailureStatus.RESOLVED: 'RESOLVED'>
        """
        request = pb.RetryFailureRequest(failure_id=failure_id, task_id=task_id or "")
        response = await self._transport.unary(self._transport.download.RetryFailure, request, timeout=timeout)
        return _convert.failure(response.failure)

    async def abandon_failure(
        self, failure_id: str, *, task_id: str | None = None, timeout: float | None = None
    ) -> Failure:
        """Close a failure record without fetching.

        >>> (await client.abandon_failure(failure_id)).status
        <FailureStatus.ABANDONED: 'ABANDONED'>
        """
        request = pb.AbandonFailureRequest(failure_id=failure_id, task_id=task_id or "")
        response = await self._transport.unary(self._transport.download.AbandonFailure, request, timeout=timeout)
        return _convert.failure(response.failure)

    async def create_video(
        self,
        task_id: str,
        *,
        file_path: str,
        file_size: int,
        format: str,
        duration_seconds: float = 0.0,
        timeout: float | None = None,
    ) -> Video:
        """Record a video by hand (a finished download records its own).

        >>> video = await client.create_video(task_id, file_path="mp4/a.mp4", file_size=1024, format="mp4")
        """
        request = pb.CreateVideoRequest(
            task_id=task_id, file_path=file_path, file_size=file_size, duration_seconds=duration_seconds, format=format
        )
        response = await self._transport.unary(self._transport.download.CreateVideo, request, timeout=timeout)
        return _convert.video(response.video)

    async def list_task_videos(
        self, task_id: str, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> Page[Video]:
        """One page of the videos a task produced.

        >>> videos = (await client.list_task_videos(task_id)).items
        """
        request = pb.ListTaskVideosRequest(task_id=task_id, page_size=page_size, page_token=page_token)
        response = await self._transport.unary(self._transport.download.ListTaskVideos, request, timeout=timeout)
        return _convert.page(response.videos, _convert.video, response.next_page_token, response.total_size)

    def iter_task_videos(self, task_id: str) -> AsyncIterator[Video]:
        """Every video of a task across all pages.

        >>> async for video in client.iter_task_videos(task_id): print(video.file_path)
        """
        return every_item(lambda token: self.list_task_videos(task_id, page_size=ALL_PAGES_SIZE, page_token=token))

    async def get_video(self, video_id: str, *, timeout: float | None = None) -> Video:
        """A video by its business ``video_id`` (the task's video_id, not the record id).

        >>> video = await client.get_video(task.video_id)
        """
        response = await self._transport.unary(
            self._transport.download.GetVideo, pb.GetVideoRequest(video_id=video_id), timeout=timeout
        )
        return _convert.video(response.video)
