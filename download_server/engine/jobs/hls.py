"""HlsJob: plan from the (master or media) playlist, fetch segments concurrently, follow live playlists."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from download_server.domain.models import Segment, SegmentStatus, Video, VideoFormat
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.sinks import FileSink, Transform
from download_server.engine.jobs import hls_playlist
from download_server.engine.jobs import local_playlist as playlist
from download_server.engine.jobs.crypto import Aes128CbcDecryptor
from download_server.engine.jobs.hls_playlist import MediaPlaylist, RemoteSegment
from download_server.engine.jobs.ledger import WHOLE, RunLedger

log = logging.getLogger(__name__)


class HlsJob:
    whole_file = False

    def __init__(self) -> None:
        # Per run: each key and init section is fetched once however many segments use it; a failure
        # is remembered too, so one dead key URI costs one round of attempts, not one per segment.
        self._keys: dict[str, bytes | FetchError] = {}
        self._inits: dict[str, FetchError | None] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.variant_note = ""

    def final_path(self, ctx: RunLedger, segment: Segment) -> Path:
        return ctx.parts.storage.segment_path(ctx.task.id, segment.index, playlist.segment_extension(segment))

    def leftovers(self, ctx: RunLedger) -> list[Path]:
        return [ctx.parts.storage.hls_dir(ctx.task.id)]

    async def run(self, ctx: RunLedger) -> None:
        source: MediaPlaylist | None = None
        if ctx.replan:
            try:
                source = await self._load(ctx, ctx.task.resource_url)
            except FetchError as exc:
                if not ctx.segments:
                    await ctx.record_failure(WHOLE, ctx.task.resource_url, exc)
                    return
                # Resuming with a plan already stored: the segments do not need the playlist any more.
                log.warning(
                    "playlist refresh failed, resuming the stored plan: %s", exc.message, extra={"task_id": ctx.task.id}
                )
            else:
                if not await self._adopt_plan(ctx, source):
                    return
        await self._fetch_segments(ctx, source)

    async def _adopt_plan(self, ctx: RunLedger, source: MediaPlaylist) -> bool:
        """Store the fresh playlist's segments; False (the failure recorded) when there is nothing to fetch."""
        await ctx.resolve(WHOLE, 0)
        await self._merge(ctx, source)
        if not ctx.segments:
            error = FetchError(ErrorType.PLAYLIST, "the playlist lists no segments")
            await ctx.record_failure(WHOLE, ctx.task.resource_url, error)
            return False
        return True

    async def _fetch_segments(self, ctx: RunLedger, source: MediaPlaylist | None) -> None:
        """Fetch the pending segments with a pool of workers, following `source` meanwhile if it is live."""
        queue: asyncio.Queue[Segment | None] = asyncio.Queue()
        for segment in ctx.pending():
            queue.put_nowait(segment)
        live = source is not None and not source.endlist
        workers = ctx.parts.settings.segment_concurrency
        if not live:
            # A finished list: no segment will be added, so idle workers would only wait for their None.
            workers = min(workers, queue.qsize())
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(self._worker(ctx, queue))
            if live and source is not None:
                await self._follow(ctx, source, queue)
            for _ in range(workers):
                queue.put_nowait(None)

    async def result(self, ctx: RunLedger, *, ended: bool) -> Video | None:
        storage, task = ctx.parts.storage, ctx.task
        segments = ctx.ordered()
        done = [s for s in segments if s.status is SegmentStatus.DONE]
        if not done:
            return None
        text = playlist.render(segments, ended=ended, comment=self.variant_note)
        path = storage.playlist_path(task.id)
        inits = playlist.init_ordinals(done)
        init_bytes = await asyncio.to_thread(_sizes, [storage.init_path(task.id, n) for n in inits.values()])
        await asyncio.to_thread(playlist.write_atomically, path, text)
        return Video(
            id="",
            task_id=task.id,
            video_id=task.video_id,
            file_path=str(path),
            file_size=sum(s.bytes for s in done) + init_bytes,
            duration_seconds=round(sum(s.duration for s in done), 3),
            format=VideoFormat.HLS,
            segment_count=len(done),
        )

    # Planning
    async def _load(self, ctx: RunLedger, url: str) -> MediaPlaylist:
        fetcher = ctx.parts.fetcher
        got = await fetcher.fetch_bytes(url, max_bytes=fetcher.settings.playlist_max_bytes)
        text = hls_playlist.decode(got.body)
        # Parsing a long playlist takes seconds of pure Python: in a thread, the event loop keeps serving.
        variant = await asyncio.to_thread(hls_playlist.pick_variant, text, got.final_url)
        if variant is not None:
            self.variant_note = f"variant {variant.url} ({variant.bandwidth} b/s, highest of {variant.count})"
            ctx.tracker.message = f"downloading the highest-bandwidth {self.variant_note}"
            log.info("master playlist: %s", self.variant_note, extra={"task_id": ctx.task.id})
            got = await fetcher.fetch_bytes(variant.url, max_bytes=fetcher.settings.playlist_max_bytes)
            text = hls_playlist.decode(got.body)
        return await asyncio.to_thread(hls_playlist.parse_media, text, got.final_url)

    async def _merge(self, ctx: RunLedger, source: MediaPlaylist) -> list[Segment]:
        """Add the playlist's segments not stored yet; index = media sequence - base, base anchored on a
        segment both know. Without common ground (we fell behind a live window) a gap of one is left."""
        if not source.segments:
            return []
        known = {_identity(s): s.index for s in ctx.segments.values()}
        anchor = next((r for r in source.segments if r.identity in known), None)
        if anchor is not None:
            base = anchor.sequence - known[anchor.identity]
        elif ctx.segments:
            base = source.segments[0].sequence - (max(ctx.segments) + 2)
        else:
            base = source.segments[0].sequence
        last = max(ctx.segments, default=-1)
        new = [_segment(ctx.task.id, r.sequence - base, r) for r in source.segments if r.sequence - base > last]
        await ctx.add_segments(new)
        return new

    async def _follow(self, ctx: RunLedger, source: MediaPlaylist, queue: asyncio.Queue[Segment | None]) -> None:
        """Poll a live playlist every target duration until ENDLIST (or the run is stopped)."""
        settings = ctx.parts.settings
        idle = 0
        while not source.endlist:
            interval = settings.live_poll_interval or max(1.0, source.target_duration)
            await asyncio.sleep(interval if idle == 0 else interval / 2)  # unchanged: RFC 8216 says half
            try:
                source = await self._load(ctx, source.url)
            except FetchError as exc:
                ctx.tracker.message = f"the live playlist stopped answering ({exc.message}); recording ended"
                return
            new = await self._merge(ctx, source)
            for segment in new:
                queue.put_nowait(segment)
            idle = 0 if new else idle + 1
            if idle >= settings.live_max_idle_polls:
                ctx.tracker.message = "the live playlist stopped changing; recording ended"
                return

    # Fetching
    async def _worker(self, ctx: RunLedger, queue: asyncio.Queue[Segment | None]) -> None:
        while (segment := await queue.get()) is not None:
            await self._fetch(ctx, segment)

    async def _fetch(self, ctx: RunLedger, segment: Segment) -> None:
        fetcher = ctx.parts.fetcher
        try:
            transform = None
            if segment.key_uri and segment.key_iv:
                transform = _decryptor(await self._key(ctx, segment.key_uri), bytes.fromhex(segment.key_iv))
            if segment.init_uri:
                await self._init(ctx, segment.init_uri)
            sink = FileSink(
                self.final_path(ctx, segment),
                transform=transform,
                on_write=ctx.tracker.received,
                writer=ctx.parts.writer,
            )
            byterange = None
            if segment.byterange_length is not None:
                byterange = (segment.byterange_offset or 0, segment.byterange_length)
            got = await fetcher.download(
                segment.uri, sink, byterange=byterange, max_bytes=fetcher.settings.segment_max_bytes
            )
        except FetchError as exc:
            await ctx.segment_failed(segment, exc)
            return
        await ctx.segment_done(segment, size=sink.size, sha256=sink.sha256, attempts=got.attempts)

    async def _key(self, ctx: RunLedger, uri: str) -> bytes:
        async with self._locks.setdefault("key " + uri, asyncio.Lock()):
            if uri not in self._keys:
                fetcher = ctx.parts.fetcher
                try:
                    got = await fetcher.fetch_bytes(uri, max_bytes=fetcher.settings.key_max_bytes)
                    if len(got.body) != 16:
                        raise FetchError(ErrorType.BAD_KEY, f"an AES-128 key has 16 bytes, got {len(got.body)}")
                    self._keys[uri] = got.body
                except FetchError as exc:
                    self._keys[uri] = exc
        key = self._keys[uri]
        if isinstance(key, FetchError):
            raise _derived(key, "the decryption key")
        return key

    async def _init(self, ctx: RunLedger, init_uri: str) -> None:
        async with self._locks.setdefault("init " + init_uri, asyncio.Lock()):
            if init_uri not in self._inits:
                ordinal = playlist.init_ordinals(ctx.segments.values())[init_uri]
                path = ctx.parts.storage.init_path(ctx.task.id, ordinal)
                self._inits[init_uri] = None
                if not await asyncio.to_thread(path.is_file):
                    url, byterange = hls_playlist.split_init_uri(init_uri)
                    fetcher = ctx.parts.fetcher
                    try:
                        await fetcher.download(
                            url,
                            FileSink(path, writer=ctx.parts.writer),
                            byterange=byterange,
                            max_bytes=fetcher.settings.init_max_bytes,
                        )
                    except FetchError as exc:
                        self._inits[init_uri] = exc
        error = self._inits[init_uri]
        if error is not None:
            raise _derived(error, "the init section (EXT-X-MAP)")


def _decryptor(key: bytes, iv: bytes) -> Callable[[], Transform]:
    def make() -> Transform:
        return Aes128CbcDecryptor(key, iv)

    return make


def _derived(error: FetchError, what: str) -> FetchError:
    message = f"{what} could not be fetched: {error.message}"
    return FetchError(error.error_type, message, http_status=error.http_status, attempts=error.attempts)


def _identity(segment: Segment) -> tuple[str, int | None, int | None]:
    return segment.uri, segment.byterange_offset, segment.byterange_length


def _segment(task_id: str, index: int, remote: RemoteSegment) -> Segment:
    offset, length = remote.byterange if remote.byterange else (None, None)
    return Segment(
        task_id=task_id,
        index=index,
        uri=remote.uri,
        duration=remote.duration,
        byterange_offset=offset,
        byterange_length=length,
        key_uri=remote.key_uri,
        key_iv=remote.key_iv,
        init_uri=remote.init_uri,
        discontinuity=remote.discontinuity,
    )


def _sizes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())
