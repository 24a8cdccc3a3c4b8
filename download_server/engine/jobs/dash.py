"""DashJob: plan from the MPD (best video + best audio, every period), fetch segments, follow a dynamic MPD.

Each segment is a row, as an HLS segment is: the RunLedger's failure records, retry-only-what-failed, crash
recovery and the final sweep apply unchanged. Row indexes interleave the two tracks (2n video, 2n+1 audio),
so each track appends on its own while a live MPD grows. A dynamic MPD is polled by live.LiveFollower: the
outage grace, URL swaps and max_duration_seconds work as for HLS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from urllib.parse import urlsplit

from download_server.domain.models import Segment, SegmentStatus, Video, VideoFormat
from download_server.domain.urls import UrlRefused
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.layout import dash_kind
from download_server.engine.files.sinks import BufferSink, FileSink
from download_server.engine.jobs import dash_start, live, local_mpd, mpd, sidx
from download_server.engine.jobs.dash_window import Cursor, Planned, after, gap_message, row_identity
from download_server.engine.jobs.hls import fetch_init
from download_server.engine.jobs.hls_playlist import MediaPlaylist, split_init_uri
from download_server.engine.jobs.ledger import RunLedger
from download_server.engine.jobs.local_playlist import write_atomically
from download_server.engine.jobs.mp4 import segmented_video
from download_server.engine.jobs.mpd_model import KINDS, MAX_SEGMENTS, Kind, Manifest, Period, Ref, Track
from download_server.engine.jobs.replan import plan_or_resume
from download_server.engine.jobs.work import WorkQueue

log = logging.getLogger(__name__)
_SLOT = {"video": 0, "audio": 1}


class DashJob:
    whole_file = False
    tracks = 2

    def __init__(self) -> None:
        self._inits: dict[str, FetchError | None] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.latest: Manifest | None = None
        self.cursors: dict[Kind, Cursor] = {}
        self.recorded: dict[Kind, float] = {}
        self.limit_reached = False
        self.announced = False  # the chosen representations were said (once the MPD lists segments)
        self.checked_hosts: set[str] = set()
        self.next_ordinal: dict[Kind, int] = {}  # per track, the number its next new segment gets
        self.known: dict[Kind, set[str]] = {}  # per track, the stored rows' identities (until the first placing)
        # (kind, init section) -> the source's @codecs, for the local MPD; empty after a restart until the MPD
        # is loaded again (a plan resumed without its source writes no codecs, as players may do without).
        self.codecs: dict[tuple[str, str | None], str] = {}

    def final_path(self, ctx: RunLedger, segment: Segment) -> Path:
        return ctx.parts.storage.dash_segment_path(ctx.task.id, segment.index)

    def leftovers(self, ctx: RunLedger) -> list[Path]:
        return [ctx.parts.storage.dash_dir(ctx.task.id)]

    async def run(self, ctx: RunLedger) -> None:
        go_on, source = await plan_or_resume(ctx, "MPD", self._load_first, self._adopt)
        if go_on:
            await self._fetch_segments(ctx, source)

    async def _load_first(self, ctx: RunLedger, url: str) -> MediaPlaylist:
        """The MPD to plan from: a live one that lists nothing yet (its stream not begun) is waited for."""
        return await dash_start.load_when_started(ctx, url, self.load, lambda: self.latest)

    async def _adopt(self, ctx: RunLedger, source: MediaPlaylist) -> MediaPlaylist:
        """Store the fresh MPD's segments (merge() reads the manifest load() kept); it is followed as it is."""
        await self.merge(ctx)
        return source

    async def result(self, ctx: RunLedger, *, ended: bool) -> Video | None:
        storage, task = ctx.parts.storage, ctx.task
        segments = await ctx.every_segment()
        done = [s for s in segments if s.status is SegmentStatus.DONE]
        if not done:
            return None
        inits = {path for s in done if (path := storage.dash_init_of(task.id, segments, s)) is not None}
        text = local_mpd.render(
            segments,
            lambda s: storage.dash_init_of(task.id, segments, s),
            lambda s: storage.dash_segment_path(task.id, s.index),
            lambda s: self.codecs.get((dash_kind(s.index), s.init_uri), ""),
        )
        path = storage.dash_manifest_path(task.id)
        init_bytes = await asyncio.to_thread(lambda: sum(p.stat().st_size for p in inits if p.is_file()))
        await asyncio.to_thread(write_atomically, path, text)
        await ctx.publish(path)
        return segmented_video(ctx, path, done, init_bytes, local_mpd.duration(done), VideoFormat.DASH)

    # Planning
    async def load(self, ctx: RunLedger, url: str) -> MediaPlaylist:
        """Fetch and parse the MPD (sidx boxes read too); the LiveFollower sees it as a playlist without
        segments (the job keeps the manifest: merge() places it)."""
        fetcher = ctx.parts.fetcher
        got = await fetcher.fetch_bytes(url, max_bytes=fetcher.settings.playlist_max_bytes)
        manifest = await asyncio.to_thread(mpd.parse, got.body, got.final_url)
        await self._check_hosts(ctx, manifest)  # before the first sidx request too
        manifest = await self._read_indexes(ctx, manifest)
        if not self.announced and manifest.listed:  # said once: later polls leave the outage countdown its place
            ctx.tracker.message = f"downloading the highest-bandwidth representations: {_chosen(manifest)}"
            self.announced = True
        self.latest = manifest
        for period in manifest.periods:
            for track in period.tracks.values():
                if track.codecs:
                    self.codecs[(track.kind, track.init)] = track.codecs
        if not ctx.task.live and manifest.dynamic:
            ctx.task.live = True
            await ctx.tracker.flush()  # at once: UpdateTask may swap a live recording's URL from now on
        return MediaPlaylist(got.final_url, manifest.update_period, not manifest.dynamic, [])

    async def _read_indexes(self, ctx: RunLedger, manifest: Manifest) -> Manifest:
        """SegmentBase tracks: the subsegments their sidx lists become refs with byte ranges."""
        periods = []
        for period in manifest.periods:
            tracks = {}
            for kind, track in period.tracks.items():
                if track.sidx is not None:
                    track = await self._sidx_track(ctx, track)
                tracks[kind] = track
            periods.append(Period(period.start, tracks))
        return dataclasses.replace(manifest, periods=periods)

    async def _sidx_track(self, ctx: RunLedger, track: Track) -> Track:
        plan = track.sidx
        assert plan is not None
        fetcher, sink = ctx.parts.fetcher, BufferSink()
        await fetcher.download(
            plan.url, sink, byterange=plan.index_range, max_bytes=fetcher.settings.playlist_max_bytes
        )
        index_end = plan.index_range[0] + plan.index_range[1]
        parts = await asyncio.to_thread(sidx.parse, sink.body, index_end, max_entries=MAX_SEGMENTS)
        refs = [Ref(plan.url, plan.start + p.start, p.duration, (p.offset, p.length)) for p in parts]
        return dataclasses.replace(track, refs=refs, sidx=None)

    async def _check_hosts(self, ctx: RunLedger, manifest: Manifest) -> None:
        """Every host the MPD names (BaseURL, init, segments) through the URL policy before anything is
        fetched: one clear failure for a private address instead of one per segment."""
        urls: dict[str, str] = {}
        for period in manifest.periods:
            for track in period.tracks.values():
                sidx_url = [track.sidx.url] if track.sidx else []
                for url in [*(r.url for r in track.refs), *([track.init] if track.init else []), *sidx_url]:
                    urls.setdefault(urlsplit(url).netloc, url)
        for host, url in urls.items():
            if host in self.checked_hosts:
                continue
            try:
                await ctx.parts.fetcher.guard.check(split_init_uri(url)[0])
            except UrlRefused as exc:
                raise FetchError(ErrorType.URL_REFUSED, f"the MPD points at a refused address: {exc.message}") from None
            self.checked_hosts.add(host)

    async def merge(self, ctx: RunLedger, elapsed: float = 0.0) -> list[Segment]:
        """Store the latest MPD's segments not stored yet, per track after its cursor; media that left a live
        window unfetched becomes a live_gap record; a live recording takes no more than max_duration_seconds."""
        manifest = self.latest
        if manifest is None:
            return []
        added: list[Segment] = []
        for kind in KINDS:
            planned = [
                Planned(ref, track.init, period.start)
                for period in manifest.periods
                if (track := period.tracks.get(kind)) is not None
                for ref in track.refs
            ]
            new = await self._place(ctx, kind, planned, manifest, elapsed)
            if manifest.dynamic and ctx.task.max_duration_seconds:
                if kind not in self.recorded:
                    self.recorded[kind] = ctx.plan.track(_SLOT[kind]).seconds
                new, reached = live.within_limit(ctx.task.max_duration_seconds, self.recorded[kind], new)
                self.recorded[kind] += sum(s.duration for s in new)
                if reached and not self.limit_reached:
                    limit = ctx.task.max_duration_seconds
                    ctx.tracker.message = f"recorded the {limit} s of max_duration_seconds; recording ended"
                self.limit_reached = self.limit_reached or reached
            added.extend(new)
        added.sort(key=lambda s: s.index)
        await ctx.add_segments(added)
        return added

    async def _place(
        self, ctx: RunLedger, kind: Kind, planned: list[Planned], manifest: Manifest, elapsed: float
    ) -> list[Segment]:
        if not planned:
            return []
        slot = _SLOT[kind]
        cursor = self.cursors.get(kind)
        if kind not in self.next_ordinal:  # once per run: a live poll must not walk a long recording's rows
            # The run holds only unfinished rows: the plan summary knows the track's last index and, on a
            # resume, the stored identities (let go once placed: the cursor says where new refs go then).
            track = ctx.plan.track(slot)
            self.next_ordinal[kind] = track.last_index // 2 + 1
            self.known[kind] = {row_identity(*identity) for identity in track.anchors or {}}
            track.anchors = None
        next_ordinal = self.next_ordinal[kind]
        fresh, gap, broken = after(cursor, planned, self.known.pop(kind, set()), next_ordinal > 0, elapsed)
        if gap is not None:
            first_index = next_ordinal * 2 + slot
            await ctx.record_live_gap(first_index, manifest.url, gap_message(kind, gap))
        segments = []
        previous_period = cursor.period if cursor is not None else None
        for position, item in enumerate(fresh):
            ref = item.ref
            offset, length = ref.byterange if ref.byterange else (None, None)
            starts_period = previous_period is not None and item.period != previous_period
            segment = Segment(
                task_id=ctx.task.id,
                index=(next_ordinal + position) * 2 + slot,
                uri=ref.url,
                duration=ref.duration,
                byterange_offset=offset,
                byterange_length=length,
                init_uri=item.init,
                discontinuity=starts_period or (position == 0 and (broken or gap is not None)),
            )
            segments.append(segment)
            previous_period = item.period
        self.next_ordinal[kind] = next_ordinal + len(fresh)
        if fresh:
            last = fresh[-1]
            self.cursors[kind] = Cursor(
                last.ref.identity, last.ref.start, last.ref.start + last.ref.duration, last.period
            )
        elif cursor is None and planned:
            # Everything listed is stored already (a resume): the cursor starts at the last of it.
            last = planned[-1]
            self.cursors[kind] = Cursor(
                last.ref.identity, last.ref.start, last.ref.start + last.ref.duration, last.period
            )
        return segments

    # Fetching
    async def _fetch_segments(self, ctx: RunLedger, source: MediaPlaylist | None) -> None:
        queue = ctx.work()
        following = source is not None and not source.endlist and not self.limit_reached
        workers = ctx.parts.settings.segment_concurrency
        if not following:
            workers = min(workers, queue.left())
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(self._worker(ctx, queue))
            if following and source is not None:
                await live_follower(ctx, self).follow(source, queue)
            await queue.close()

    async def _worker(self, ctx: RunLedger, queue: WorkQueue) -> None:
        while (segment := await queue.get()) is not None:
            await self._fetch(ctx, segment)

    async def _fetch(self, ctx: RunLedger, segment: Segment) -> None:
        fetcher = ctx.parts.fetcher
        try:
            if segment.init_uri:
                await self._init(ctx, segment)
            sink = FileSink(self.final_path(ctx, segment), on_write=ctx.tracker.received, writer=ctx.parts.writer)
            byterange = None
            if segment.byterange_length is not None:
                byterange = (segment.byterange_offset or 0, segment.byterange_length)
            got = await fetcher.download(
                segment.uri, sink, byterange=byterange, max_bytes=fetcher.settings.segment_max_bytes
            )
            await ctx.publish(sink.final, sink.sha256)  # uploaded, then recorded (as an HLS segment)
        except FetchError as exc:
            await ctx.segment_failed(segment, exc)
            return
        await ctx.segment_done(segment, size=sink.size, sha256=sink.sha256, attempts=got.attempts)

    async def _init(self, ctx: RunLedger, segment: Segment) -> None:
        """Each track's init section once per run, however many segments use it (a failure is kept too)."""
        init_uri = segment.init_uri or ""
        kind = dash_kind(segment.index)
        key = f"{kind} {init_uri}"
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key not in self._inits:
                ordinal = ctx.plan.track(segment.index).inits[init_uri]
                path = ctx.parts.storage.dash_init_path(ctx.task.id, kind, ordinal)
                # On disk, or (a remote store) published by an earlier run on any replica: not fetched again.
                self._inits[key] = await fetch_init(ctx, init_uri, path)
        error = self._inits[key]
        if error is not None:
            message = f"the {kind} init section could not be fetched: {error.message}"
            raise FetchError(error.error_type, message, http_status=error.http_status, attempts=error.attempts)


def live_follower(ctx: RunLedger, job: DashJob) -> live.LiveFollower:
    async def load(url: str) -> MediaPlaylist:
        return await job.load(ctx, url)

    async def merge(source: MediaPlaylist, elapsed: float) -> list[Segment]:
        return await job.merge(ctx, elapsed)

    return live.LiveFollower(ctx, load, merge, lambda: job.limit_reached)


def _chosen(manifest: Manifest) -> str:
    tracks = manifest.periods[0].tracks.values()
    return ", ".join(f"{t.kind} {t.representation or '?'} ({t.bandwidth} b/s, highest of {t.choices})" for t in tracks)
