"""ImageJob: one image, its content type and size checked, saved under the standard name with its extension."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from download_server.domain.models import Segment, SegmentStatus, Video, VideoFormat
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.sinks import FileSink
from download_server.engine.jobs.ledger import RunLedger
from download_server.engine.jobs.mp4 import single_segment

# Raster formats only: SVG is a document that can carry scripts, not a picture to store and serve.
IMAGE_TYPES = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/avif": "avif",
    "image/bmp": "bmp",
}


class ImageJob:
    whole_file = True

    def final_path(self, ctx: RunLedger, segment: Segment) -> Path | None:
        # Blocking glob: only called from RunLedger's reconcile thread and after a run.
        return ctx.parts.storage.find_image(ctx.task)

    def leftovers(self, ctx: RunLedger) -> list[Path]:
        storage = ctx.parts.storage
        found = storage.find_image(ctx.task)
        return [storage.image_temp_path(ctx.task), *([found] if found else [])]

    async def run(self, ctx: RunLedger) -> None:
        segment = await single_segment(ctx)
        if segment.status is not SegmentStatus.PENDING:
            return
        task, storage, fetcher = ctx.task, ctx.parts.storage, ctx.parts.fetcher

        def check(resp: aiohttp.ClientResponse) -> None:
            content_type = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            extension = IMAGE_TYPES.get(content_type)
            if extension is None:
                shown = content_type or "no content type"
                raise FetchError(
                    ErrorType.BAD_CONTENT, f"expected an image (PNG, JPEG, GIF, WebP, AVIF, BMP), got {shown}"
                )
            sink.final = storage.image_path(task, extension)
            if resp.content_length is not None:
                task.bytes_total = sink.expected_size = resp.content_length

        sink = FileSink(
            storage.image_path(task, "img"),
            temp=storage.image_temp_path(task),
            on_write=ctx.tracker.received,
            writer=ctx.parts.writer,
        )
        try:
            got = await fetcher.download(segment.uri, sink, check=check, max_bytes=fetcher.settings.image_max_bytes)
            await ctx.publish(sink.final, sink.sha256)  # uploaded, then recorded
        except FetchError as exc:
            await ctx.segment_failed(segment, exc)
            return
        task.bytes_total = sink.size
        await ctx.segment_done(segment, size=sink.size, sha256=sink.sha256, attempts=got.attempts)

    async def result(self, ctx: RunLedger, *, ended: bool) -> Video | None:
        segment = ctx.segments.get(0)
        if segment is None or segment.status is not SegmentStatus.DONE:
            return None
        path = await asyncio.to_thread(self.final_path, ctx, segment)
        if path is None:
            return None
        return Video(
            id="",
            task_id=ctx.task.id,
            video_id=ctx.task.video_id,
            file_path=str(path),
            file_size=segment.bytes,
            duration_seconds=0.0,
            format=VideoFormat.IMAGE,
            sha256=segment.sha256,
        )
