"""ImageJob: one image, its content type and size checked, saved under the standard name with its extension."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from download_server.domain.models import Segment, SegmentStatus, Video, VideoFormat
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.layout import ranged_paths
from download_server.engine.files.pieces import RangeState
from download_server.engine.files.sinks import FileSink
from download_server.engine.jobs.ledger import RunLedger
from download_server.engine.jobs.mp4 import single_segment, whole_file_video
from download_server.engine.jobs.ranged import RangedFetch, WholeFile, fetch_whole, offer_ranges

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


def image_extension(resp: aiohttp.ClientResponse) -> str:
    """The file extension for the answer's image type; BAD_CONTENT for anything that is not a raster image."""
    content_type = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    extension = IMAGE_TYPES.get(content_type)
    if extension is None:
        shown = content_type or "no content type"
        raise FetchError(ErrorType.BAD_CONTENT, f"expected an image (PNG, JPEG, GIF, WebP, AVIF, BMP), got {shown}")
    return extension


class ImageJob:
    whole_file = True
    tracks = 1

    def final_path(self, ctx: RunLedger, segment: Segment) -> Path | None:
        # Blocking glob: only called from RunLedger's reconcile thread and after a run.
        return ctx.parts.storage.find_image(ctx.task)

    def leftovers(self, ctx: RunLedger) -> list[Path]:
        storage = ctx.parts.storage
        found = storage.find_image(ctx.task)
        temp = storage.image_temp_path(ctx.task)
        return [temp, *ranged_paths(temp), *([found] if found else [])]

    async def run(self, ctx: RunLedger) -> None:
        segment = await single_segment(ctx)
        if segment.status is not SegmentStatus.PENDING:
            return
        task, storage = ctx.task, ctx.parts.storage
        work, sidecar = ranged_paths(storage.image_temp_path(task))
        ranged = RangedFetch(ctx, segment.uri, work, sidecar, content_check=image_extension)

        def final_of(state: RangeState) -> Path:
            extension = IMAGE_TYPES.get(state.content_type)
            if extension is None:  # a plan is only made after image_extension() passed: a damaged sidecar
                raise FetchError(ErrorType.BAD_CONTENT, f"expected an image, the plan says {state.content_type}")
            chosen.append(storage.image_path(task, extension))
            return chosen[-1]

        chosen: list[Path] = []  # where the pieces' file went (published before it is recorded)
        try:
            got = await fetch_whole(ranged, lambda offer: self._single(ctx, segment, offer), final_of)
            if not got.published:
                await ctx.publish(chosen[-1], got.sha256)
        except FetchError as exc:
            await ctx.segment_failed(segment, exc)
            return
        task.bytes_total = got.size
        await ctx.segment_done(segment, size=got.size, sha256=got.sha256, attempts=got.attempts)

    async def _single(self, ctx: RunLedger, segment: Segment, offer: bool) -> WholeFile:
        task, storage, fetcher = ctx.task, ctx.parts.storage, ctx.parts.fetcher
        max_bytes = fetcher.settings.image_max_bytes

        def check(resp: aiohttp.ClientResponse) -> None:
            sink.final = storage.image_path(task, image_extension(resp))
            if resp.content_length is not None:
                task.bytes_total = sink.expected_size = resp.content_length
            if offer:
                offer_ranges(resp, ctx, segment.uri, max_bytes=max_bytes)

        sink = FileSink(
            storage.image_path(task, "img"),
            temp=storage.image_temp_path(task),
            on_write=ctx.tracker.received,
            writer=ctx.parts.writer,
        )
        got = await fetcher.download(segment.uri, sink, check=check, max_bytes=max_bytes)
        await ctx.publish(sink.final, sink.sha256)  # uploaded, then recorded
        return WholeFile(sink.size, sink.sha256, got.attempts, published=True)

    async def result(self, ctx: RunLedger, *, ended: bool) -> Video | None:
        segment = ctx.segments.get(0)
        if segment is None or segment.status is not SegmentStatus.DONE:
            return None
        path = await asyncio.to_thread(self.final_path, ctx, segment)
        if path is None:
            return None
        return whole_file_video(ctx, segment, path, 0.0, VideoFormat.IMAGE)
