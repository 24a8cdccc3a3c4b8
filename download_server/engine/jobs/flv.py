"""FlvJob: an HTTP-FLV stream recorded into one .flv file; a live one through reconnects and the outage grace.

One long GET streams into an FlvSink. A VOD file (the origin states its length) downloads whole and resumes
by Range. A live stream (no length) that drops or ends is requested again, with backoff, until media
flows again or DOWNLOAD_LIVE_OUTAGE_SECONDS pass without any (the room has ended); every time media comes
back after it was lost (a drop, a pause, a crash), the lost time is an ABANDONED `live_gap` record. A
resource_url swapped meanwhile (a refreshed signed URL) is taken at the next connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import aiohttp

from download_server.domain.models import Segment, SegmentStatus, Video, VideoFormat
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.layout import temp_path
from download_server.engine.files.sinks import sha256_of
from download_server.engine.jobs.flv_sink import FlvSink
from download_server.engine.jobs.flv_tags import NotFlv, Scan, scan
from download_server.engine.jobs.flv_timeline import RecordingLimit, Timeline
from download_server.engine.jobs.flv_upload import FlvUpload
from download_server.engine.jobs.ledger import RunLedger
from download_server.engine.jobs.live import MAX_BACKOFF_SECONDS
from download_server.engine.jobs.mp4 import announced_total, single_segment, whole_file_video
from download_server.engine.jobs.parts import WHOLE
from mediadl_common.errors import NotFound

log = logging.getLogger(__name__)

# Our own disk failed: reconnecting would only append after a write that may have stopped mid-tag. The
# recording fails; RetryTask continues it after the file's last whole tag.
_FATAL = frozenset({ErrorType.IO, ErrorType.DISK_FULL})
# An origin answering a stream URL with these is showing an error or login page, not FLV.
_NOT_FLV = frozenset({"text/html", "text/plain", "application/json", "application/xml", "text/xml"})


class FlvJob:
    whole_file = True
    tracks = 1

    def __init__(self) -> None:
        self.attempts = 0
        self._quiet = 0  # connections in a row that brought no media
        self._stopped: FetchError | None = None  # why a recording kept so far stopped early (the user's quota)
        self._orphaned = 0  # bytes an earlier run recorded that this run cannot continue (a failover on S3)

    def final_path(self, ctx: RunLedger, segment: Segment) -> Path:
        return ctx.parts.storage.flv_path(ctx.task)

    def leftovers(self, ctx: RunLedger) -> list[Path]:
        final = ctx.parts.storage.flv_path(ctx.task)
        return [final, temp_path(final), ctx.parts.storage.flv_mp4_path(ctx.task)]

    async def run(self, ctx: RunLedger) -> None:
        segment = await single_segment(ctx)
        if segment.status is not SegmentStatus.PENDING:
            return
        sink = await self._open(ctx, segment)
        upload = await self._upload(ctx, segment, sink) if ctx.parts.media.remote else None
        if await self._record(ctx, segment, sink, upload):
            await self._seal(ctx, segment, sink, upload)
        elif upload is not None:
            await upload.abort_upload()  # failed: no parts left billed and invisible; the .part file stays

    async def result(self, ctx: RunLedger, *, ended: bool) -> Video | None:
        segment = ctx.segments.get(0)
        if segment is None or segment.status is not SegmentStatus.DONE:
            return None
        path = self.final_path(ctx, segment)
        duration = segment.duration or (await asyncio.to_thread(scan, path)).media_seconds
        return whole_file_video(ctx, segment, path, duration, VideoFormat.FLV)

    async def _open(self, ctx: RunLedger, segment: Segment) -> FlvSink:
        """The sink over what earlier runs left: cut after the last whole tag, timestamps continuing from it."""
        task = ctx.task
        temp = temp_path(self.final_path(ctx, segment))
        held, mtime = await asyncio.to_thread(_resume_point, temp)
        limit_ms = task.max_duration_seconds * 1000 if task.live else 0
        timeline = Timeline(held, repair=task.live, limit_ms=limit_ms)

        def on_write(nbytes: int) -> None:
            _progress(ctx, segment, sink, nbytes)

        async def on_gap(seconds: float) -> None:
            if self._orphaned:
                lost, self._orphaned = self._orphaned, 0
                await _orphan_gap(ctx, lost)
            else:
                await _live_gap(ctx, seconds)

        sink = FlvSink(
            temp,
            timeline,
            writer=ctx.parts.writer,
            size=held.end,
            max_bytes=ctx.parts.fetcher.settings.max_file_bytes,
            on_write=on_write,
            on_gap=on_gap,
        )
        if held.end:
            sink.live, sink.written_at = task.live, mtime
            task.bytes_downloaded = held.end
            if task.live and timeline.first is not None:
                sink.gap_since = mtime  # paused or killed since: the live media in between is lost
        return sink

    async def _upload(self, ctx: RunLedger, segment: Segment, sink: FlvSink) -> FlvUpload:
        """The multipart upload of the work file (a remote store): an open one this work area can continue
        is adopted; one it cannot (another replica's, after a failover) is aborted, its media a live gap."""
        task = ctx.task
        upload = FlvUpload(sink, ctx.parts.media, ctx.parts.storage.key(self.final_path(ctx, segment)))
        try:
            lost = await upload.resume()
        except FetchError as exc:
            log.warning("open uploads could not be listed: %s", exc.message, extra={"task_id": task.id})
            return upload  # a new upload; an orphan left behind is the bucket's lifecycle rule's (documented)
        if not sink.size:
            # An earlier run recorded what this work area does not hold (a failover, a lost work directory):
            # an FLV continues by appending to its file and an open upload's parts cannot be read back, so a
            # live recording starts again and that media is a live gap (said when the stream shows it is live).
            self._orphaned = max(lost, task.bytes_downloaded)
        return upload

    async def _record(self, ctx: RunLedger, segment: Segment, sink: FlvSink, upload: FlvUpload | None) -> bool:
        """Connections until the file is whole (VOD) or the room has ended (live); False: failed (recorded)."""
        fetcher = ctx.parts.fetcher
        while True:
            error: FetchError | None = None
            try:
                got = await fetcher.download(
                    await self._url(ctx, sink),
                    upload or sink,
                    check=_Check(ctx, sink, orphaned=self._orphaned > 0),
                    expected_total=ctx.task.bytes_total,
                )
                self.attempts += got.attempts
            except RecordingLimit as end:
                ctx.tracker.message = f"{end}; recording ended"
                return True
            except FetchError as exc:
                self.attempts += exc.attempts
                if exc.error_type is ErrorType.QUOTA_EXCEEDED and sink.live and sink.timeline.first is not None:
                    self._stopped = exc  # what is recorded stays the recording, with a failure record
                    return True
                if not sink.live or exc.error_type in _FATAL or (_unplayable(exc) and sink.timeline.first is None):
                    await ctx.segment_failed(segment, exc)
                    return False
                error = exc
            if not sink.live:
                return True  # the whole VOD file
            if not await self._wait_out(ctx, sink, error):
                return sink.timeline.first is not None or await _nothing(ctx, segment, error)

    async def _wait_out(self, ctx: RunLedger, sink: FlvSink, error: FetchError | None) -> bool:
        """After a live connection ended: wait (backing off) and say so; False once the grace is over."""
        settings = ctx.parts.settings
        grace = settings.live_outage_seconds
        self._quiet = 1 if sink.connection_media else self._quiet + 1
        waited = time.monotonic() - sink.last_media
        what = f"failed ({_short(error)})" if error is not None else "ended"
        if waited >= grace:
            ctx.tracker.message = f"the live stream {what} and did not come back for {grace:g} s; recording ended"
            return False
        ctx.tracker.message = f"live stream {what}: reconnecting ({waited:.0f} s of {grace:g})"
        interval = settings.live_poll_interval or 1.0
        ceiling = max(interval, min(MAX_BACKOFF_SECONDS, grace / 6))
        await asyncio.sleep(max(0.0, min(interval * 2.0 ** (self._quiet - 1), ceiling, grace - waited)))
        return True

    async def _url(self, ctx: RunLedger, sink: FlvSink) -> str:
        """The task's resource_url; on a live recording, a URL the user swapped meanwhile (UpdateTask)."""
        task = ctx.task
        if not sink.live:
            return task.resource_url
        try:
            stored = await ctx.store.get_task(task.id)
        except NotFound:
            return task.resource_url  # being deleted: the run is stopped in a moment
        if stored.resource_url != task.resource_url:
            task.resource_url = stored.resource_url
            log.info("live recording follows a swapped resource_url", extra={"task_id": task.id})
            ctx.tracker.message = "following the new resource_url"
        return task.resource_url

    async def _seal(self, ctx: RunLedger, segment: Segment, sink: FlvSink, upload: FlvUpload | None) -> None:
        """The recording is over: the .part becomes the .flv (renamed whole, like every finished file), its
        upload completed first (a remote store), so the row never says DONE of an object that is not there."""
        await sink.settle()
        if sink.timeline.first is None:
            error = FetchError(ErrorType.BAD_CONTENT, "the FLV stream carried no audio or video")
            await ctx.segment_failed(segment, error)
            if upload is not None:
                await upload.abort_upload()
            return
        digest = sink.sha256()
        if digest is None:  # continued from an earlier run's file: hashed whole once
            digest = await asyncio.to_thread(sha256_of, sink.temp)
        if upload is not None:
            try:
                await upload.finish(digest)
            except FetchError as exc:  # the .part and the open upload stay: RetryTask continues both
                await ctx.segment_failed(segment, exc)
                return
        final = self.final_path(ctx, segment)
        await ctx.parts.writer.run(lambda: os.replace(sink.temp, final))
        segment.duration = sink.timeline.media_ms / 1000
        ctx.task.bytes_total = sink.size
        await ctx.segment_done(segment, size=sink.size, sha256=digest, attempts=self.attempts)
        if self._stopped is not None:
            await ctx.record_failure(WHOLE, ctx.task.resource_url, self._stopped)


class _Check:
    """Looks at each answer before its body: an error page fails fast; the first answer says live or VOD."""

    def __init__(self, ctx: RunLedger, sink: FlvSink, *, orphaned: bool = False) -> None:
        self.ctx, self.sink = ctx, sink
        self.orphaned = orphaned  # an earlier run's media is lost: the first media of a live stream says so

    def __call__(self, resp: aiohttp.ClientResponse) -> None:
        content_type = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type in _NOT_FLV:
            raise FetchError(ErrorType.BAD_CONTENT, f"expected an FLV stream, the origin sent {content_type}")
        sink, task = self.sink, self.ctx.task
        if sink.live:
            return
        total = announced_total(resp, sink.held())
        if total is not None:
            if sink.live is None and sink.max_bytes and total > sink.max_bytes:
                limit = sink.max_bytes
                raise FetchError(ErrorType.TOO_LARGE, f"the file is {total} bytes, over the {limit} byte limit")
            sink.live = False
            task.bytes_total = total
            return
        # Live (also after a crash that came before the row said so: the file is continued, not restarted):
        # timestamps repaired from here on; UpdateTask may swap the URL once the row says live.
        if sink.live is False and sink.timeline.first is not None:
            sink.gap_since = sink.written_at
        elif self.orphaned and sink.gap_since is None:
            sink.gap_since = time.time()
        sink.live = True
        sink.timeline.repair = True
        sink.timeline.limit_ms = task.max_duration_seconds * 1000
        task.live = True
        self.ctx.tracker.touched()


def _unplayable(error: FetchError) -> bool:
    return error.error_type is ErrorType.BAD_CONTENT


def _progress(ctx: RunLedger, segment: Segment, sink: FlvSink, nbytes: int) -> None:
    """Bytes for the speed and the counters; media time for the events (and, live, against max_duration)."""
    task = ctx.task
    ctx.tracker.received(nbytes)
    task.bytes_downloaded = sink.size
    seconds = sink.timeline.media_ms / 1000
    if task.bytes_total and not sink.live:
        task.progress = min(1.0, sink.size / task.bytes_total)
    elif task.max_duration_seconds:
        task.progress = min(1.0, seconds / task.max_duration_seconds)
    if sink.live and sink.connection_media:
        ctx.tracker.message = f"recording live: {seconds:.1f} s of media, {sink.timeline.video_frames} video frames"
    segment.duration = seconds


async def _live_gap(ctx: RunLedger, seconds: float) -> None:
    message = f"the live stream was lost for about {seconds:.1f} s (reconnected; that media is missing)"
    await ctx.record_live_gap(WHOLE, ctx.task.resource_url, message)


async def _orphan_gap(ctx: RunLedger, lost: int) -> None:
    message = (
        f"about {lost} bytes recorded by an earlier run (another replica's work area, an upload that cannot be "
        "read back) could not be continued; the recording starts again from the live stream (that media is missing)"
    )
    await ctx.record_live_gap(WHOLE, ctx.task.resource_url, message)


async def _nothing(ctx: RunLedger, segment: Segment, error: FetchError | None) -> bool:
    """A live stream that never brought any media within the grace: the task fails with the last cause."""
    failure = error or FetchError(ErrorType.BAD_CONTENT, "the FLV stream carried no audio or video")
    await ctx.segment_failed(segment, failure)
    return False


def _resume_point(temp: Path) -> tuple[Scan, float | None]:
    """Blocking: what a .part holds up to its last whole tag (the rest cut off), and when it was last written."""
    try:
        mtime = temp.stat().st_mtime
        held = scan(temp)
    except FileNotFoundError:
        return Scan(), None
    except NotFlv:
        temp.unlink(missing_ok=True)  # not a recording of ours: start over
        return Scan(), None
    os.truncate(temp, held.end)
    return held, mtime


def _short(error: FetchError) -> str:
    """'HTTP 404', 'timeout': what an outage event names."""
    return f"HTTP {error.http_status}" if error.http_status else error.error_type.value
