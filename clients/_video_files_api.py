"""Reading a recording back (ReadVideo): its media file, its thumbnail, or one file of an HLS recording."""

# ruff: noqa: ASYNC109  -- `timeout` is the gRPC deadline passed to the call, grpc's own name for it

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from clients._transport import Transport
from mediadl.download.v1 import download_pb2 as pb

KINDS = {"media": pb.VIDEO_FILE_KIND_MEDIA, "thumbnail": pb.VIDEO_FILE_KIND_THUMBNAIL}


@dataclass(frozen=True)
class VideoChunk:
    """A piece of a recording's file: ``data`` starts at ``offset`` of a file of ``total_size`` bytes."""

    data: bytes
    offset: int
    total_size: int
    content_type: str


class VideoFilesApi:
    _transport: Transport

    async def read_video(
        self,
        video_id: str,
        *,
        offset: int = 0,
        kind: str = "media",
        path: str = "",
        timeout: float | None = None,
    ) -> AsyncGenerator[VideoChunk, None]:
        """The recording's file in chunks (at most 1 MiB each) from ``offset``, so a broken read resumes.

        ``kind`` is ``"media"`` (the MP4 or image) or ``"thumbnail"``; ``path`` names a file of an HLS
        recording relative to its folder (``index.m3u8``, ``ts/0.ts``).

        >>> with open("clip.mp4", "ab") as out:
        ...     async for chunk in client.read_video(task.video_id, offset=out.tell()):
        ...         out.write(chunk.data)
        """
        request = pb.ReadVideoRequest(video_id=video_id, offset=offset, kind=KINDS[kind], path=path)
        async for response in self._transport.stream(self._transport.download.ReadVideo, request, timeout=timeout):
            yield VideoChunk(response.data, response.offset, response.total_size, response.content_type)
