"""HlsJob: plan from the (master or media) playlist, fetch segments concurrently, follow live playlists."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from download_server.domain.models import OutputFormat, Segment, SegmentStatus, Video, VideoFormat
from download_server.domain.ports import MediaStoreError
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.sinks import FileSink, Transform
from download_server.engine.jobs import hls_playlist, live, live_tail
from download_server.engine.jobs import local_playlist as playlist
from download_server.engine.jobs.crypto import Aes128CbcDecryptor
from download_server.engine.jobs.hls_playlist import MediaPlaylist, RemoteSegment
from download_server.engine.jobs.ledger import RunLedger
from download_server.engine.jobs.mp4 import segmented_video
from download_server.engine.jobs.replan import plan_or_resume
from download_server.engine.jobs.work import WorkQueue
from download_server.engine.output.live_mux import LiveMux, Piece

log = logging.getLogger(__name__)
PLAN_SLICE = 2000  # entries of a first plan turned into segment rows at a time


class HlsJob:
    whole_file = False
    tracks = 1

    def __init__(self) -> None:
        # Per run: each key and init section is fetched once however many segments use it; a failure
        # is remembered too, so one dead key URI costs one round of attempts, not one per segment.
        self._keys: dict[str, bytes | FetchError] = {}
        self._inits: dict[str, FetchError | None] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.variant_note = ""
        self.cursor: live.Cursor | None = None  # where the last playlist refresh ended (live streams)
        self.limit_reached = False  # a live recording has its max_duration_seconds
        self.recorded: float | None = None  # seconds of live media planned so far (with a max duration)
        # OUTPUT_FORMAT_MP4 on a fresh plan: the MP4 is built while the segments download (engine/output/live_mux.py).
        self.building: LiveMux | None = None
        self._init_paths: dict[str, Path] = {}

    def final_path(self, ctx: RunLedger, segment: Segment) -> Path:
        return ctx.parts.storage.segment_path(ctx.task.id, segment.index, playlist.segment_extension(segment))

    def leftovers(self, ctx: RunLedger) -> list[Path]:
        return [ctx.parts.storage.hls_dir(ctx.task.id)]

    async def run(self, ctx: RunLedger) -> None:
        if ctx.replan and ctx.task.segments_total == 0 and ctx.task.output_format is OutputFormat.MP4:
            self.building = self.building or LiveMux(ctx.parts.storage.hls_mp4_path(ctx.task), ctx.parts.writer)
        go_on, source = await plan_or_resume(ctx, "playlist", self.load, self._adopt)
        if go_on:
            await self._fetch_segments(ctx, source)

    async def _adopt(self, ctx: RunLedger, source: MediaPlaylist) -> MediaPlaylist:
        """Store the fresh playlist's segments; the follower needs its URL, target duration and end only, and
        the first plan's entries (100k of them in a long live window) must not live as long as the run."""
        await self._merge_in_slices(ctx, source)
        return dataclasses.replace(source, segments=[])

    async def _fetch_segments(self, ctx: RunLedger, source: MediaPlaylist | None) -> None:
        """Fetch the pending segments with a pool of workers, following `source` meanwhile if it is live."""
        queue = ctx.work()
        live = source is not None and not source.endlist
        workers = ctx.parts.settings.segment_concurrency
        if not live:
            # A finished list: no segment will be added, so idle workers would only wait for their None.
            workers = min(workers, queue.left())
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(self._worker(ctx, queue))
            if live and source is not None and not self.limit_reached:
                follower = live_follower(ctx, self)
                await follower.follow(source, queue)
            await queue.close()

    async def result(self, ctx: RunLedger, *, ended: bool) -> Video | None:
        storage, task = ctx.parts.storage, ctx.task
        segments = await ctx.every_segment()
        done = [s for s in segments if s.status is SegmentStatus.DONE]
        if not done:
            return None
        text = playlist.render(segments, ended=ended, comment=self.variant_note)
        path = storage.playlist_path(task.id)
        inits = playlist.init_ordinals(done)
        init_bytes = await asyncio.to_thread(_sizes, [storage.init_path(task.id, n) for n in inits.values()])
        await asyncio.to_thread(playlist.write_atomically, path, text)
        await ctx.publish(path)
        return segmented_video(ctx, path, done, init_bytes, sum(s.duration for s in done), VideoFormat.HLS)

    # Planning
    async def load(self, ctx: RunLedger, url: str, *, after: int | None = None, packed: bool = True) -> MediaPlaylist:
        """The media playlist at `url` (through a master playlist's best variant); with `after` (a live
        poll) only the segments after that media sequence are parsed when that is safe. `packed` (a first
        plan, which only _merge_in_slices reads): a long list's entries past the first chunk stay packed."""
        fetcher = ctx.parts.fetcher
        got = await fetcher.fetch_bytes(url, max_bytes=fetcher.settings.playlist_max_bytes)
        text = hls_playlist.decode(got.body)
        if after is not None and "#EXT-X-STREAM-INF" not in text:
            tail = live_tail.parse_since(text, got.final_url, after)
            if tail is not None:
                return tail
        # Parsing a long playlist takes seconds of pure Python: in a thread, the event loop keeps serving.
        variant = await asyncio.to_thread(hls_playlist.pick_variant, text, got.final_url)
        if variant is not None:
            self.variant_note = f"variant {variant.url} ({variant.bandwidth} b/s, highest of {variant.count})"
            ctx.tracker.message = f"downloading the highest-bandwidth {self.variant_note}"
            log.info("master playlist: %s", self.variant_note, extra={"task_id": ctx.task.id})
            got = await fetcher.fetch_bytes(variant.url, max_bytes=fetcher.settings.playlist_max_bytes)
            text = hls_playlist.decode(got.body)
        parse = live_tail.parse_packed if packed else live_tail.parse_chunked
        return await asyncio.to_thread(parse, text, got.final_url)

    async def _merge(self, ctx: RunLedger, source: MediaPlaylist, elapsed: float = 0.0) -> list[Segment]:
        """Store the playlist's segments not stored yet (live.place says where); a live gap becomes an
        ABANDONED live_gap record, and a live recording takes no more than its max_duration_seconds."""
        plan = ctx.plan.track(0)
        placement = live.place(self.cursor, source, live.Known(plan.anchors or {}, plan.last_index), elapsed)
        self.cursor, plan.anchors = placement.cursor, None  # from now on the cursor says where entries go
        new = [_segment(ctx.task.id, index, remote) for index, remote in placement.new]
        if placement.reset and new:
            new[0].discontinuity = True  # an encoder restart: new numbers, never a reason to refetch
            log.info("live media sequence reset or jump: a discontinuity", extra={"task_id": ctx.task.id})
        if not source.endlist:
            if not ctx.task.live:
                ctx.task.live = True
                await ctx.tracker.flush()  # at once: UpdateTask may swap a live recording's URL from now on
            if ctx.task.max_duration_seconds:
                if self.recorded is None:  # taken once; then each poll adds only what it brings
                    self.recorded = plan.seconds
                new, self.limit_reached = live.within_limit(ctx.task.max_duration_seconds, self.recorded, new)
                self.recorded += sum(s.duration for s in new)
        if ctx.task.live:
            ctx.window = live.listed(self.cursor, source)  # the final sweep retries only what is still listed
        if placement.gap is not None:
            await ctx.record_live_gap(placement.gap.first_index, source.url, _gap_message(placement.gap))
        await ctx.add_segments(new)
        if self.building is not None:
            self.building.planned(s.index for s in new)
        return new

    async def _merge_in_slices(self, ctx: RunLedger, source: MediaPlaylist) -> None:
        """A first plan merged PLAN_SLICE entries at a time, each slice's parsed entries let go as its rows
        are made: a 100k-entry window never holds both forms whole (the peak stays in the allocator). A
        resume anchors on the whole list (its stored segments may meet the window anywhere)."""
        remote = source.segments
        if ctx.plan.track(0).anchors or (len(remote) <= PLAN_SLICE and not source.packed):
            whole = [segment for part in live_tail.take_slices(source, PLAN_SLICE) for segment in part]
            await self._merge(ctx, dataclasses.replace(source, segments=whole, packed=[]))
            return
        listed_from = source.listed_from if source.listed_from is not None else remote[0].sequence
        for part in live_tail.take_slices(source, PLAN_SLICE):
            if self.limit_reached:
                break
            await self._merge(ctx, dataclasses.replace(source, segments=part, listed_from=listed_from, packed=[]))
        remote.clear()
        source.packed.clear()

    # Fetching
    async def _worker(self, ctx: RunLedger, queue: WorkQueue) -> None:
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
            await ctx.publish(sink.final, sink.sha256)  # uploaded, then recorded
        except FetchError as exc:
            await ctx.segment_failed(segment, exc)
            return
        await ctx.segment_done(segment, size=sink.size, sha256=sink.sha256, attempts=got.attempts)
        if self.building is not None:
            init = self._init_paths.get(segment.init_uri) if segment.init_uri else None
            self.building.finished(Piece(segment.index, sink.final, init, segment.discontinuity))

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
                ordinal = ctx.plan.track(0).inits[init_uri]
                path = ctx.parts.storage.init_path(ctx.task.id, ordinal)
                self._init_paths[init_uri] = path
                self._inits[init_uri] = await fetch_init(ctx, init_uri, path)
        error = self._inits[init_uri]
        if error is not None:
            raise _derived(error, "the init section (EXT-X-MAP)")


async def fetch_init(ctx: RunLedger, init_uri: str, path: Path) -> FetchError | None:
    """An init section (HLS EXT-X-MAP, a DASH Initialization) into `path` and the media store, unless it is
    stored already; the failure is returned, to be kept for every segment that needs it."""
    if await init_held(ctx, path):
        return None
    url, byterange = hls_playlist.split_init_uri(init_uri)
    fetcher = ctx.parts.fetcher
    try:
        sink = FileSink(path, writer=ctx.parts.writer)
        await fetcher.download(url, sink, byterange=byterange, max_bytes=fetcher.settings.init_max_bytes)
        await ctx.publish(path)
    except FetchError as exc:
        return exc
    return None


async def init_held(ctx: RunLedger, path: Path) -> bool:
    """Whether the init section is stored already: on disk, or (a remote store) published by an earlier run;
    one left on disk unpublished (a crash between the two) is published now."""
    media = ctx.parts.media
    on_disk = await asyncio.to_thread(path.is_file)
    if not media.remote:
        return on_disk
    try:
        if await media.stat(ctx.parts.storage.key(path)) is not None:
            return True
    except MediaStoreError:
        return False  # fetched and published again: that records the failure if the store is still down
    if on_disk:
        await ctx.publish(path)
    return on_disk


def live_follower(ctx: RunLedger, job: HlsJob) -> live.LiveFollower:
    async def load(url: str) -> MediaPlaylist:
        # Not packed: a whole parse here (a reset, no cursor yet) is placed whole by _merge.
        return await job.load(ctx, url, after=job.cursor.sequence if job.cursor else None, packed=False)

    async def merge(source: MediaPlaylist, elapsed: float) -> list[Segment]:
        return await job._merge(ctx, source, elapsed)

    return live.LiveFollower(ctx, load, merge, lambda: job.limit_reached)


def _gap_message(gap: live.Gap) -> str:
    return (
        f"media sequences {gap.first_sequence}-{gap.last_sequence} ({gap.count} segment(s), about "
        f"{gap.seconds:g} s) left the live window before they could be fetched"
    )


def _decryptor(key: bytes, iv: bytes) -> Callable[[], Transform]:
    def make() -> Transform:
        return Aes128CbcDecryptor(key, iv)

    return make


def _derived(error: FetchError, what: str) -> FetchError:
    message = f"{what} could not be fetched: {error.message}"
    return FetchError(error.error_type, message, http_status=error.http_status, attempts=error.attempts)


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
