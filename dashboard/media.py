"""Recordings in the page through ReadVideo with the user's own client: media (HTTP Range), thumbnail, HLS files."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import aclosing

from aiohttp import web

from clients import AsyncClient, VideoChunk
from dashboard.errors import ApiError
from dashboard.security import current_session

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_SAFE_PATH = re.compile(r"[A-Za-z0-9._/-]{1,200}")


def add_media_routes(app: web.Application) -> None:
    app.router.add_get("/api/videos/{video_id}/media", media)
    app.router.add_get("/api/videos/{video_id}/thumbnail", thumbnail)
    app.router.add_get("/api/videos/{video_id}/files/{path:.+}", recording_file)


async def media(request: web.Request) -> web.StreamResponse:
    """The MP4 or image, honouring one `Range: bytes=a-b` (what browsers send to seek), else whole."""
    video_id = request.match_info["video_id"]
    client = current_session(request).client
    wanted = _RANGE.fullmatch(request.headers.get("Range", "").strip())
    first, last = (wanted.group(1), wanted.group(2)) if wanted else ("", "")
    if wanted and not first and last:  # a suffix: the last N bytes, which needs the size first
        total = await _size(client, video_id)
        first, last = str(max(0, total - int(last))), ""
    start = int(first) if first else 0
    chunks = client.read_video(video_id, offset=start)
    async with aclosing(chunks):
        head = await anext(chunks)
        total = head.total_size
        end = min(int(last), total - 1) if last else total - 1
        if wanted and (start >= total or start > end):
            return web.Response(status=416, headers={"Content-Range": f"bytes */{total}"})
        response = web.StreamResponse(status=206 if wanted else 200, headers=_headers(request, head))
        if wanted:
            response.headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        response.content_length = end - start + 1
        await response.prepare(request)
        await _send(response, head, chunks, end + 1)
    await response.write_eof()
    return response


async def thumbnail(request: web.Request) -> web.StreamResponse:
    return await _whole(request, kind="thumbnail")


async def recording_file(request: web.Request) -> web.StreamResponse:
    """A file of an HLS recording (its playlist, a segment), for a player in the page."""
    path = request.match_info["path"]
    if not _SAFE_PATH.fullmatch(path) or ".." in path.split("/"):
        raise ApiError.field("path", "must be a file of the recording, relative to its folder")
    return await _whole(request, path=path)


async def _whole(request: web.Request, *, kind: str = "media", path: str = "") -> web.StreamResponse:
    client = current_session(request).client
    chunks = client.read_video(request.match_info["video_id"], kind=kind, path=path)
    async with aclosing(chunks):
        head = await anext(chunks)
        response = web.StreamResponse(headers=_headers(request, head))
        response.content_length = head.total_size
        await response.prepare(request)
        await _send(response, head, chunks, head.total_size)
    await response.write_eof()
    return response


async def _send(response: web.StreamResponse, head: VideoChunk, rest: AsyncIterator[VideoChunk], stop: int) -> None:
    """Write from `head` on until offset `stop`; the gRPC stream is closed as soon as the range is sent."""
    chunk: VideoChunk | None = head
    while chunk is not None and chunk.offset < stop:
        await response.write(chunk.data[: stop - chunk.offset])
        chunk = await anext(rest, None)


async def _size(client: AsyncClient, video_id: str) -> int:
    chunks = client.read_video(video_id)
    async with aclosing(chunks):
        return (await anext(chunks)).total_size


def _headers(request: web.Request, head: VideoChunk) -> dict[str, str]:
    headers = {
        "Content-Type": head.content_type or "application/octet-stream",
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",
    }
    if request.query.get("download"):
        name = re.sub(r"[^A-Za-z0-9._-]", "_", request.match_info["video_id"])
        extension = {"video/mp4": ".mp4", "image/jpeg": ".jpg", "image/png": ".png"}.get(head.content_type, "")
        headers["Content-Disposition"] = f'attachment; filename="{name}{extension}"'
    return headers
