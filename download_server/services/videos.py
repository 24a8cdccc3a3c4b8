"""Video-record use cases: record what a download produced, list a task's, get one by business video_id."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from download_server.domain.listing import VideoQuery
from download_server.domain.models import Video, VideoFileKind, VideoFormat
from download_server.domain.ports import FileChunk, RecordingFiles, TaskFiles
from download_server.domain.repositories import Transactions, UnitOfWork
from download_server.services.pagination import Listing, paginate
from download_server.services.validation import MAX_FILE_PATH, check_finite, check_length, check_uuid, require_uuid
from mediadl_common.errors import InvalidArgument, Validator
from mediadl_common.page_tokens import PageTokens, scope_of

log = logging.getLogger(__name__)
FORMATS = tuple(f.value for f in VideoFormat)


@dataclass(frozen=True)
class NewVideo:
    task_id: str
    file_path: str
    file_size: int
    duration_seconds: float
    format: str


@dataclass(frozen=True)
class VideoRead:
    """ReadVideo: which recording (business video_id), which of its files, from where."""

    video_id: str
    offset: int = 0
    kind: VideoFileKind = VideoFileKind.MEDIA
    path: str = ""


class VideoService:
    def __init__(
        self, transactions: Transactions, tokens: PageTokens, files: TaskFiles, recordings: RecordingFiles
    ) -> None:
        self._tx = transactions
        self._tokens = tokens
        self._files = files
        self._recordings = recordings

    async def create_video(self, user_id: str, new: NewVideo) -> Video:
        """Record (or replace) the task's one video record; video_id and segment count come from the task."""
        v = Validator()
        task_id = check_uuid(v, new.task_id, "task_id")
        check_length(v, new.file_path, "file_path", minimum=1, maximum=MAX_FILE_PATH)
        v.check(new.file_size >= 0, "file_size", "must be >= 0")
        check_finite(v, new.duration_seconds, "duration_seconds")
        v.check(new.format in FORMATS, "format", f"must be one of {', '.join(FORMATS)}")
        v.raise_if_any()

        def record(uow: UnitOfWork) -> Video:
            task = uow.tasks.get(task_id, user_id, lock=True)
            # Only the task's own files: a record naming another task's file would let DeleteTask remove it.
            file_path = self._files.owned(task, new.file_path)
            if file_path is None:
                raise InvalidArgument.field(
                    "file_path", "must name a file of this task (inside its folder under the storage directory)"
                )
            return uow.videos.save(
                Video(
                    id=str(uuid.uuid4()),
                    task_id=task.id,
                    video_id=task.video_id,
                    file_path=file_path,
                    file_size=new.file_size,
                    duration_seconds=new.duration_seconds,
                    format=VideoFormat(new.format),
                    segment_count=task.segments_done,
                )
            )

        stored = await self._tx.run(record)
        log.info("video recorded", extra={"task_id": task_id, "video_record": stored.id})
        return self._shown(stored)

    async def list_task_videos(self, user_id: str, task_id: str, page_size: int, page_token: str) -> Listing[Video]:
        task_id = require_uuid(task_id, "task_id")
        # Someone else's task is NOT_FOUND (before any page argument is judged), not an empty page.
        await self._tx.read_task(task_id, user_id)
        query = VideoQuery(user_id=user_id, task_id=task_id)
        listing = await paginate(
            self._tokens,
            scope_of("ListTaskVideos", user_id, task_id),
            page_size,
            page_token,
            lambda cursor, limit: self._tx.run(lambda uow: uow.videos.page(query, cursor, limit)),
        )
        listing.items[:] = [self._shown(video) for video in listing.items]
        return listing

    async def get_video(self, user_id: str, video_id: str) -> Video:
        video_id = require_uuid(video_id, "video_id")
        return self._shown(await self._tx.run(lambda uow: uow.videos.newest(video_id, user_id)))

    def _shown(self, video: Video) -> Video:
        """Responses never reveal where the storage directory is: paths relative to it (older rows held absolute)."""
        video.file_path = self._files.relative(video.file_path)
        return video

    async def read_video(self, user_id: str, request: VideoRead) -> AsyncGenerator[FileChunk, None]:
        """The recording's file in chunks from `offset`; another user's recording is NOT_FOUND."""
        v = Validator()
        video_id = check_uuid(v, request.video_id, "video_id")
        check_length(v, request.path, "path", maximum=MAX_FILE_PATH)
        v.check(request.offset >= 0, "offset", "must be >= 0")
        v.check(not (request.path and request.kind is VideoFileKind.THUMBNAIL), "path", "not with the thumbnail")
        v.raise_if_any()
        video = await self._tx.run(lambda uow: uow.videos.newest(video_id, user_id))
        async with aclosing(self._recordings.read(video, request.kind, request.path, request.offset)) as chunks:
            async for chunk in chunks:
                yield chunk
