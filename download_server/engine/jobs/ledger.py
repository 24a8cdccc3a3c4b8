"""RunLedger: one run of one task (its segments, open failures, counters) and the bookkeeping all jobs share."""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from download_server.domain.models import (
    LIVE_GAP,
    Failure,
    FailureStatus,
    Segment,
    SegmentStatus,
    Task,
    TaskStatus,
    Video,
    utcnow,
)
from download_server.engine.failures import FetchError
from download_server.engine.files.objects import publish_file
from download_server.engine.files.sinks import sha256_of
from download_server.engine.jobs.parts import OPEN, WHOLE, EngineParts
from download_server.engine.jobs.work import WorkQueue
from download_server.engine.progress.tracker import ProgressTracker

log = logging.getLogger(__name__)
ADD_SLICE = 2000  # segment rows per insert
COMPACT_FROM = 4096  # held segments from which a mostly emptied map is copied to a smaller one
Identity = tuple[str, int | None, int | None]  # uri, byte-range offset, length: the same media across refreshes


@dataclass
class TrackSummary:
    """One track's share of the plan (DASH interleaves two tracks in the indexes, HLS has one)."""

    last_index: int = -1
    seconds: float = 0.0  # the planned media's duration (a live recording's max_duration_seconds counts it)
    inits: dict[str, int] = field(default_factory=dict)  # init section URI -> ordinal, by first use in index order
    # The stored segments' identities, for anchoring a resumed live plan; dropped once the run has placed
    # its first playlist (from then on the cursor says where new entries go).
    anchors: dict[Identity, int] | None = None

    def add(self, segment: Segment) -> None:
        self.last_index = max(self.last_index, segment.index)
        self.seconds += segment.duration
        if segment.init_uri and segment.init_uri not in self.inits:
            self.inits[segment.init_uri] = len(self.inits)
        if self.anchors is not None:
            self.anchors[(segment.uri, segment.byterange_offset, segment.byterange_length)] = segment.index


class PlanSummary:
    """What a run keeps of every segment of its plan, finished or not: a DONE segment of a segmented plan
    lives only in the database and in the media store (a day-long live recording would otherwise hold every
    row it made)."""

    def __init__(self, tracks: int = 1, *, anchored: bool = False) -> None:
        self.total = 0
        self.tracks = [TrackSummary(anchors={} if anchored else None) for _ in range(tracks)]

    def track(self, index: int) -> TrackSummary:
        """The track a segment index belongs to (index modulo the job's track count)."""
        return self.tracks[index % len(self.tracks)]

    @property
    def last_index(self) -> int:
        return max(track.last_index for track in self.tracks)

    def add(self, segments: Iterable[Segment]) -> None:
        """Count segments planned after every one counted so far in their track (indexes only grow)."""
        for segment in segments:
            self.total += 1
            self.track(segment.index).add(segment)


class Job(Protocol):
    """What one resource kind (HLS, MP4, image) does within a run."""

    whole_file: bool  # one segment row (index 0) for the whole resource; failures use index -1
    tracks: int  # segment indexes interleave this many tracks (track = index % tracks): DASH 2, others 1

    def final_path(self, ctx: RunLedger, segment: Segment) -> Path | None:
        """Where the segment's finished file is (None: not known yet)."""
        ...

    def leftovers(self, ctx: RunLedger) -> list[Path]:
        """Files or folders a fresh plan must not inherit (left by an earlier plan of this task)."""
        ...

    async def run(self, ctx: RunLedger) -> None:
        """Fetch every PENDING segment (planning first when ctx.replan); record failures, never raise them."""
        ...

    async def result(self, ctx: RunLedger, *, ended: bool) -> Video | None:
        """Write what the run produced (the local playlist) and describe it; None when nothing usable exists."""
        ...


class RunLedger:
    def __init__(
        self, task: Task, parts: EngineParts, tracker: ProgressTracker, job: Job, targets: frozenset[int] | None
    ) -> None:
        self.task = task
        self.parts = parts
        self.store = parts.store
        self.tracker = tracker
        self.job = job
        self.targets = targets
        # A normal run (start, resume, recovery) or a retry of the whole resource plans from the source again.
        self.replan = targets is None or WHOLE in targets
        # The segments the run holds: a whole-file job's one segment, whatever its state; else the FAILED
        # ones and what was unfinished at load. Rows planned during the run stay in the store until a
        # WorkQueue hands them to a worker (a long live window is not held whole).
        self.segments: dict[int, Segment] = {}
        self._work: WorkQueue | None = None
        self._handed_through = -1  # rows up to this index are held, or were handed to a worker
        self.plan = PlanSummary(job.tracks)
        self._held_peak = 0  # the most segments `segments` held since it was last compacted
        self.open_failures: dict[int, Failure] = {}
        # This run's last error per open failure: the final sweep takes those that may pass later.
        self.errors: dict[int, FetchError] = {}
        # A live recording's current window (local indexes its last playlist refresh listed); None: all.
        self.window: range | None = None
        self.done_bytes = 0
        self.media_lost = False  # a live recording has live_gap records: at best PARTIAL_COMPLETED

    async def load(self) -> None:
        """Read persisted state, check it against the disk, and prepare the retry targets."""
        segments = await self.store.list_segments(self.task.id)
        segments.sort(key=lambda s: s.index)
        self.segments = {s.index: s for s in segments}
        self.plan = PlanSummary(self.job.tracks, anchored=bool(segments))
        self.plan.add(segments)
        for failure in await self.store.task_failures(self.task.id, (*OPEN, FailureStatus.ABANDONED)):
            if failure.status.is_open:
                self.open_failures[failure.segment_index] = failure
            elif failure.error_type == LIVE_GAP:
                self.media_lost = True
        await self._check_stored(bool(segments))
        for segment in self.segments.values():
            if segment.status is SegmentStatus.DONE:
                await self.resolve(self.failure_index(segment), 0)
        for index in sorted(self.targets or ()):
            await self._prepare_retry(index)
        self.recount()
        self._handed_through = self.plan.last_index
        if not self.job.whole_file:
            self.segments = {i: s for i, s in self.segments.items() if s.status is not SegmentStatus.DONE}

    async def _check_stored(self, planned: bool) -> None:
        """A stored plan is checked against the media store (or the disk); a fresh plan starts clean."""
        media = self.parts.media
        if planned:
            reconcile = self._reconcile_with_store() if media.remote else asyncio.to_thread(self._reconcile_with_disk)
            for segment in await reconcile:
                self.tracker.touched(segment)
            return
        # A fresh plan: nothing an earlier plan of this task left (other URL, other variant) may be adopted.
        await asyncio.to_thread(lambda: _remove(self.job.leftovers(self)))
        if media.remote:
            await media.remove(self.parts.storage.task_prefixes(self.task))

    def _reconcile_with_disk(self) -> list[Segment]:
        """Blocking. A DONE segment whose file is gone is fetched again; a PENDING one whose final file
        exists was completed just before a crash (files are renamed only when whole): keep it."""
        changed = []
        for segment in self.segments.values():
            path = self.job.final_path(self, segment)
            if path is None:
                continue
            exists = path.is_file()
            if segment.status is SegmentStatus.DONE and not exists:
                segment.status, segment.bytes, segment.sha256 = SegmentStatus.PENDING, 0, ""
                changed.append(segment)
            elif segment.status is SegmentStatus.PENDING and exists:
                segment.status, segment.bytes, segment.sha256 = SegmentStatus.DONE, path.stat().st_size, sha256_of(path)
                changed.append(segment)
        return changed

    async def _reconcile_with_store(self) -> list[Segment]:
        """_reconcile_with_disk against the media store: a segment is there when its object is (this replica's
        work area may be empty: another replica fetched it). A whole file left unpublished by a crash between
        its rename and its upload is published now rather than fetched again."""
        storage = self.parts.storage
        stored: dict[str, int] = {}
        for prefix in storage.task_prefixes(self.task):
            stored.update(await self.parts.media.listing(prefix))
        # One trip to a thread for every path (a long live recording has 100k segments), not one per segment.
        paths, unpublished = await asyncio.to_thread(self._locate_unpublished, stored)
        for whole, sha256 in unpublished:
            await self.publish(whole, sha256)
            stored[storage.key(whole)] = (await asyncio.to_thread(whole.stat)).st_size
        changed = []
        for segment in self.segments.values():
            path = paths.get(segment.index)
            if path is None:
                continue
            key = storage.key(path)
            if segment.status is SegmentStatus.DONE and key not in stored:
                segment.status, segment.bytes, segment.sha256 = SegmentStatus.PENDING, 0, ""
                changed.append(segment)
            elif segment.status is SegmentStatus.PENDING and key in stored:
                segment.status, segment.bytes = SegmentStatus.DONE, stored[key]
                segment.sha256 = await self._stored_sha256(key, path)
                changed.append(segment)
        return changed

    def _locate_unpublished(self, stored: dict[str, int]) -> tuple[dict[int, Path], list[tuple[Path, str]]]:
        """Blocking. Each segment's final path, and the whole files of the work area the store lacks (hashed)."""
        paths: dict[int, Path] = {}
        unpublished = []
        for segment in self.segments.values():
            path = self.job.final_path(self, segment)
            if path is None:
                continue
            paths[segment.index] = path
            if self.parts.storage.key(path) not in stored and path.is_file():
                unpublished.append((path, sha256_of(path)))
        return paths, unpublished

    async def _stored_sha256(self, key: str, path: Path) -> str:
        """The hash recorded with the object, else the object's bytes hashed (brought into the work area)."""
        found = await self.parts.media.stat(key)
        if found is not None and found.sha256:
            return found.sha256
        await self.parts.media.fetch(key, path)
        return await asyncio.to_thread(sha256_of, path)

    async def publish(self, path: Path, sha256: str = "") -> None:
        """Publish a whole file to the media store before it is recorded, so a DONE row never names a missing
        object (nothing to do on the local backend); a store failure raises a retryable FetchError."""
        await publish_file(self.parts.storage, self.parts.media, path, sha256)

    async def _prepare_retry(self, index: int) -> None:
        failure = self.open_failures.get(index)
        if failure is not None and failure.status is not FailureStatus.RETRYING:
            failure.status, failure.update_time = FailureStatus.RETRYING, utcnow()
            await self.store.save_failure(failure)
        segment = self.segments.get(0 if self.job.whole_file else index)
        if segment is not None and segment.status is SegmentStatus.FAILED:
            segment.status = SegmentStatus.PENDING
            self.task.segments_failed -= 1
            self.tracker.touched(segment)

    async def prepare_retries(self, indexes: Sequence[int]) -> None:
        """Make these failures' segments PENDING again (their records RETRYING) for another pass of the job."""
        for index in indexes:
            await self._prepare_retry(index)
        self.task.recompute_progress()
        self.tracker.touched()

    def sweepable(self) -> list[int]:
        """Failure indexes of FAILED segments whose last error may pass later (and, live, still listed)."""
        due = []
        for index, error in self.errors.items():
            segment = self.segments.get(0 if self.job.whole_file else index)
            if not error.retryable or segment is None or segment.status is not SegmentStatus.FAILED:
                continue
            if self.window is None or index in self.window:
                due.append(index)
        return sorted(due)

    def failure_index(self, segment: Segment) -> int:
        return WHOLE if self.job.whole_file else segment.index

    def pending(self) -> list[Segment]:
        return [self.segments[i] for i in sorted(self.segments) if self.segments[i].status is SegmentStatus.PENDING]

    def work(self) -> WorkQueue:
        """A pass's work for the job's workers: the held PENDING segments, then the rows planned since the
        last pass (read from the store a slice at a time), then what a live poll plans (WorkQueue.extend)."""
        after = self._handed_through if self._work is None else self._work.through
        self._work = WorkQueue(self._pending_rows, after, self.plan.last_index, self.pending())
        return self._work

    def held(self) -> int:
        """Segments this run holds in memory (its map and the work queue's read-ahead): bounded by the
        slice, the workers and the failures, never by how long the plan is."""
        return len(self.segments) + (self._work.buffered if self._work is not None else 0)

    async def _pending_rows(self, after_index: int, limit: int) -> list[Segment]:
        return await self.store.pending_segments(self.task.id, after_index, limit)

    async def every_segment(self) -> list[Segment]:
        """The whole plan in index order, for the end of a run (the tracker has written every change by
        then): the finished rows from the database, the unfinished ones as this run holds them."""
        if self.job.whole_file:
            return [self.segments[i] for i in sorted(self.segments)]
        merged = {s.index: s for s in await self.store.list_segments(self.task.id)}
        merged.update(self.segments)
        return [merged[i] for i in sorted(merged)]

    def recount(self) -> None:
        """The counters from every segment (at load, when this run still holds them all)."""
        task = self.task
        segments = self.segments.values()
        task.segments_total = len(self.segments)
        task.segments_done = sum(s.status is SegmentStatus.DONE for s in segments)
        task.segments_failed = sum(s.status is SegmentStatus.FAILED for s in segments)
        self.done_bytes = sum(s.bytes for s in segments if s.status is SegmentStatus.DONE)
        task.bytes_downloaded = self.done_bytes
        task.recompute_progress()
        self.tracker.touched()

    async def add_segments(self, segments: Sequence[Segment]) -> None:
        if not segments:
            return
        # In slices: one statement per 100k rows costs the database layer a peak the process never gives back.
        for start in range(0, len(segments), ADD_SLICE):
            await self.store.add_segments(self.task.id, segments[start : start + ADD_SLICE])
        if self.job.whole_file:
            for segment in segments:
                self.segments[segment.index] = segment
        self.plan.add(segments)
        # New segments are PENDING with nothing on disk: only the total moves (a live poll must not walk
        # every segment of a long recording).
        self.task.segments_total = self.plan.total
        self.task.recompute_progress()
        self.tracker.touched()

    async def segment_done(self, segment: Segment, *, size: int, sha256: str, attempts: int) -> None:
        task = self.task
        if segment.status is SegmentStatus.FAILED:
            task.segments_failed -= 1
        if segment.status is not SegmentStatus.DONE:
            task.segments_done += 1
            self.done_bytes += size
        # Assigned, not added: a whole-file job shows its partial bytes here while it streams.
        task.bytes_downloaded = self.done_bytes
        segment.status, segment.bytes, segment.sha256 = SegmentStatus.DONE, size, sha256
        segment.attempts += attempts
        task.recompute_progress()
        self.tracker.touched(segment)  # the tracker holds it until written
        if not self.job.whole_file:
            self._forget(segment.index)
        self.parts.metrics.segment_finished("done")
        await self.resolve(self.failure_index(segment), attempts)

    def _forget(self, index: int) -> None:
        """Drop a finished segment; a dict never shrinks by itself, so one that held a whole catch-up (100k
        entries, megabytes of table) is copied once it holds a small part of that."""
        self.segments.pop(index, None)
        self._held_peak = max(self._held_peak, len(self.segments) + 1)
        if self._held_peak > COMPACT_FROM and len(self.segments) < self._held_peak // 8:
            self.segments = dict(self.segments)
            self._held_peak = len(self.segments)

    async def segment_failed(self, segment: Segment, error: FetchError) -> None:
        if segment.status is not SegmentStatus.FAILED:
            self.task.segments_failed += 1
        segment.status = SegmentStatus.FAILED
        segment.attempts += error.attempts
        self.segments[segment.index] = segment  # held from now on: the sweep and a retry look for it here
        self.tracker.touched(segment)
        self.parts.metrics.segment_finished("failed")
        await self.record_failure(self.failure_index(segment), segment.uri, error)

    async def record_failure(self, index: int, url: str, error: FetchError) -> None:
        """One record per failing segment (or resource): a repeated failure updates the open record."""
        where = "the resource" if index == WHOLE else f"segment {index}"
        self.errors[index] = error
        self.task.last_error = f"{where}: {error.message}"
        failure = self.open_failures.get(index)
        if failure is not None:
            failure.error_type, failure.error_message = error.error_type.value, error.message
            failure.http_status, failure.segment_url = error.http_status, url
            failure.attempts += error.attempts
            failure.status, failure.update_time = FailureStatus.PENDING, utcnow()
            await self.store.save_failure(failure)
            _log_failure(logging.INFO, "failed again", self.task.id, where, url, error)
            return
        failure = Failure(
            id=str(uuid.uuid4()),
            task_id=self.task.id,
            segment_index=index,
            segment_url=url,
            error_type=error.error_type.value,
            error_message=error.message,
            http_status=error.http_status,
            attempts=error.attempts,
        )
        self.open_failures[index] = await self.store.add_failure(failure)
        self.parts.metrics.failure_recorded(error.error_type.value)
        _log_failure(logging.WARNING, "failure recorded", self.task.id, where, url, error)

    async def record_live_gap(self, first_index: int, url: str, message: str) -> None:
        """Media that left the live window before it could be fetched: closed at once (nothing can fetch it)."""
        self.media_lost = True
        self.task.last_error = f"segment {first_index}: {message}"
        failure = Failure(
            id=str(uuid.uuid4()),
            task_id=self.task.id,
            segment_index=first_index,
            segment_url=url,
            error_type=LIVE_GAP,
            error_message=message,
            status=FailureStatus.ABANDONED,
        )
        await self.store.add_failure(failure)
        self.parts.metrics.failure_recorded(LIVE_GAP)
        log.warning("live gap: %s", message, extra={"task_id": self.task.id})

    async def resolve(self, index: int, attempts: int) -> None:
        failure = self.open_failures.pop(index, None)
        self.errors.pop(index, None)
        if failure is not None:
            failure.status, failure.update_time = FailureStatus.RESOLVED, utcnow()
            failure.attempts += attempts
            await self.store.save_failure(failure)

    async def release_retries(self) -> None:
        """Failures still marked RETRYING when a run stops go back to PENDING (open, not being fetched)."""
        for failure in self.open_failures.values():
            if failure.status is FailureStatus.RETRYING:
                failure.status, failure.update_time = FailureStatus.PENDING, utcnow()
                await self.store.save_failure(failure)

    def outcome(self) -> TaskStatus:
        """COMPLETED when everything is on disk; PARTIAL_COMPLETED with gaps; FAILED with nothing usable."""
        if self.task.segments_done == 0:
            return TaskStatus.FAILED
        if self.task.segments_failed or self.open_failures or self.media_lost:
            return TaskStatus.PARTIAL_COMPLETED
        return TaskStatus.COMPLETED


def _log_failure(level: int, what: str, task_id: str, where: str, url: str, error: FetchError) -> None:
    # The URL may carry a signature or token: the log filter masks those query parameters.
    log.log(
        level,
        "%s: %s, %s (HTTP %d, %d attempt(s)) at %s: %s",
        what,
        where,
        error.error_type.value,
        error.http_status,
        error.attempts,
        url,
        error.message,
        extra={"task_id": task_id},
    )


def _remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
