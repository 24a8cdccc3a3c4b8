"""Mp4Job: one progressive file streamed to disk in constant memory, resumed with HTTP Range after a stop."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import aiohttp

from download_server.domain.models import Segment, SegmentStatus, Video, VideoFormat
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.growing import GrowingSink
from download_server.engine.files.layout import ranged_paths, temp_path
from download_server.engine.files.sinks import FileSink
from download_server.engine.http.fetch import Fetched, ResponseCheck
from download_server.engine.jobs.ledger import RunLedger
from download_server.engine.jobs.ranged import RangedFetch, WholeFile, fetch_whole, offer_ranges

# An origin answering a video URL with these is showing an error or login page, not the file.
_NOT_VIDEO = frozenset({"text/html", "text/plain", "application/json", "application/xml", "text/xml"})


class Mp4Job:
    whole_file = True
    tracks = 1

    def final_path(self, ctx: RunLedger, segment: Segment) -> Path:
        return ctx.parts.storage.mp4_path(ctx.task)

    def leftovers(self, ctx: RunLedger) -> list[Path]:
        final = ctx.parts.storage.mp4_path(ctx.task)
        return [final, temp_path(final), *ranged_paths(temp_path(final))]

    async def run(self, ctx: RunLedger) -> None:
        segment = await single_segment(ctx)
        if segment.status is not SegmentStatus.PENDING:
            return
        final = self.final_path(ctx, segment)
        ranged = RangedFetch(ctx, segment.uri, *ranged_paths(temp_path(final)), content_check=check_video)
        try:
            got = await fetch_whole(ranged, lambda offer: self._single(ctx, segment, offer), lambda _: final)
            if not got.published:  # pieces land in the work area: the whole file goes up before it is recorded
                await ctx.publish(final, got.sha256)
        except FetchError as exc:
            await ctx.segment_failed(segment, exc)
            return
        ctx.task.bytes_total = got.size
        await ctx.segment_done(segment, size=got.size, sha256=got.sha256, attempts=got.attempts)

    async def _single(self, ctx: RunLedger, segment: Segment, offer: bool) -> WholeFile:
        """Over one connection, resumed with `Range: bytes=<held>-`; with `offer`, a first answer that
        allows pieces raises RangesOffered instead (jobs/ranged.py)."""
        task, fetcher = ctx.task, ctx.parts.fetcher
        max_bytes = fetcher.settings.max_file_bytes  # a declared size over it fails before any byte

        def on_write(nbytes: int) -> None:
            ctx.tracker.received(nbytes)
            task.bytes_downloaded = sink.size
            if task.bytes_total:
                task.progress = min(1.0, sink.size / task.bytes_total)

        def check(resp: aiohttp.ClientResponse) -> None:
            check_video(resp)
            held = sink.held()
            total = announced_total(resp, held)
            if total is not None:
                task.bytes_total = sink.expected_size = total
            if offer and not held:
                offer_ranges(resp, ctx, segment.uri, max_bytes=max_bytes)

        sink = FileSink(self.final_path(ctx, segment), resumable=True, on_write=on_write, writer=ctx.parts.writer)
        # A .part left by a pause or a crash counts as downloaded: only the rest is requested.
        task.bytes_downloaded = await asyncio.to_thread(sink.held)
        got = await _download(ctx, segment, sink, check)
        return WholeFile(sink.size, sink.sha256, got.attempts, published=True)

    async def result(self, ctx: RunLedger, *, ended: bool) -> Video | None:
        segment = ctx.segments.get(0)
        if segment is None or segment.status is not SegmentStatus.DONE:
            return None
        path = self.final_path(ctx, segment)
        duration = await asyncio.to_thread(mp4_duration, path)
        return whole_file_video(ctx, segment, path, duration, VideoFormat.MP4)


async def _download(ctx: RunLedger, segment: Segment, sink: FileSink, check: ResponseCheck) -> Fetched:
    """The body into `sink`. With a remote store the file also goes up as parts while it grows (an upload
    left open by a pause or a crash is resumed with the .part file), completed before the row is recorded."""
    fetcher, media = ctx.parts.fetcher, ctx.parts.media
    growing = GrowingSink(sink, media, ctx.parts.storage.key(sink.final)) if media.remote else None
    try:
        if growing is not None:
            await growing.resume()
        got = await fetcher.download(
            segment.uri,
            growing or sink,
            check=check,
            expected_total=ctx.task.bytes_total,
            max_bytes=fetcher.settings.max_file_bytes,  # a declared size over it fails before any byte
        )
        if growing is not None:
            await growing.finish(sink.sha256)
    except FetchError:
        if growing is not None:
            with contextlib.suppress(FetchError):  # a store that is down: the bucket's lifecycle rule has the rest
                await growing.abort_upload()  # no parts left billed and invisible; the .part file stays
        raise
    return got


async def single_segment(ctx: RunLedger) -> Segment:
    """The one segment row (index 0) of a whole-file resource, created on the first run."""
    segment = ctx.segments.get(0)
    if segment is None:
        segment = Segment(task_id=ctx.task.id, index=0, uri=ctx.task.resource_url)
        await ctx.add_segments([segment])
    return segment


def whole_file_video(ctx: RunLedger, segment: Segment, path: Path, duration: float, format: VideoFormat) -> Video:
    """The video record of a whole-file resource (MP4, FLV, image): its one segment's size and hash."""
    return Video(
        id="",
        task_id=ctx.task.id,
        video_id=ctx.task.video_id,
        file_path=str(path),
        file_size=segment.bytes,
        duration_seconds=round(duration, 3),
        format=format,
        sha256=segment.sha256,
    )


def segmented_video(
    ctx: RunLedger, path: Path, done: Sequence[Segment], init_bytes: int, duration: float, format: VideoFormat
) -> Video:
    """The video record of a segmented recording (HLS, DASH): its local playlist or manifest at `path`, the
    done segments' bytes plus their init sections', and how many segments it holds (no one file to hash)."""
    return Video(
        id="",
        task_id=ctx.task.id,
        video_id=ctx.task.video_id,
        file_path=str(path),
        file_size=sum(s.bytes for s in done) + init_bytes,
        duration_seconds=round(duration, 3),
        format=format,
        segment_count=len(done),
    )


def check_video(resp: aiohttp.ClientResponse) -> None:
    content_type = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type in _NOT_VIDEO:
        raise FetchError(ErrorType.BAD_CONTENT, f"expected a video, the origin sent {content_type}")


def announced_total(resp: aiohttp.ClientResponse, held: int) -> int | None:
    """The whole file's size as the origin states it (Content-Range total, or Content-Length of a 200)."""
    if resp.status == 206:
        total = resp.headers.get("Content-Range", "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    return resp.content_length


def mp4_duration(path: Path) -> float:
    """Blocking: seconds from the moov/mvhd box (0.0 if absent), reading box headers only."""
    with path.open("rb") as handle:
        size = path.stat().st_size
        moov = _find_box(handle, b"moov", 0, size)
        if moov is None:
            return 0.0
        mvhd = _find_box(handle, b"mvhd", *moov)
        if mvhd is None:
            return 0.0
        handle.seek(mvhd[0])
        version = handle.read(4)[0]
        if version == 1:
            handle.seek(16, 1)
            timescale, duration = struct.unpack(">IQ", handle.read(12))
        else:
            handle.seek(8, 1)
            timescale, duration = struct.unpack(">II", handle.read(8))
        return float(duration) / timescale if timescale else 0.0


def _find_box(handle: BinaryIO, kind: bytes, start: int, end: int) -> tuple[int, int] | None:
    """(payload start, payload end) of the first box of `kind` between start and end."""
    position = start
    while position + 8 <= end:
        handle.seek(position)
        box_size, box_kind = struct.unpack(">I4s", handle.read(8))
        header = 8
        if box_size == 1:
            box_size = struct.unpack(">Q", handle.read(8))[0]
            header = 16
        elif box_size == 0:
            box_size = end - position
        if box_size < header:
            return None
        if box_kind == kind:
            return position + header, position + box_size
        position += box_size
    return None
