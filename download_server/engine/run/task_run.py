"""TaskRun: one run of one task, read top to bottom: load, fetch (the job), end state, stop when asked."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Callable
from enum import StrEnum

from download_server.domain.lifecycle import Action
from download_server.domain.models import ResourceType, Task, TaskEvent, TaskStatus
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.fence import FencedMedia, FencedStore, FencedWriter, LeaseFence, LeaseLost
from download_server.engine.files.objects import abort_open_uploads, clear_work_area, materialize
from download_server.engine.http.budget import RUN_RETRIES, RunRetries
from download_server.engine.jobs.dash import DashJob
from download_server.engine.jobs.flv import FlvJob
from download_server.engine.jobs.hls import HlsJob
from download_server.engine.jobs.image import ImageJob
from download_server.engine.jobs.ledger import Job, RunLedger
from download_server.engine.jobs.mp4 import Mp4Job
from download_server.engine.jobs.parts import WHOLE, EngineParts
from download_server.engine.output.finish import finish_output, publish_output
from download_server.engine.output.live_mux import building_of
from download_server.engine.progress.events import TaskEvents
from download_server.engine.progress.tracker import ProgressTracker
from download_server.engine.run.state import save_state
from download_server.engine.run.sweep import sweep
from mediadl_common import spans

log = logging.getLogger(__name__)


class Halt(StrEnum):
    """Why a run stops without any action on the task itself."""

    SHUTDOWN = "shutdown"  # the replica stops: leave the task PROCESSING for the next claim
    LOST = "lost"  # the lease went to another replica (or could not be renewed): persist nothing


# A run stops for a command (Action.PAUSE, CANCEL, or DELETE: the rows are going, persist nothing) or a Halt.
StopReason = Action | Halt


def make_job(resource_type: ResourceType) -> Job:
    jobs: dict[ResourceType, type[Job]] = {
        ResourceType.HLS: HlsJob,
        ResourceType.MP4: Mp4Job,
        ResourceType.IMAGE: ImageJob,
        ResourceType.DASH: DashJob,
        ResourceType.FLV: FlvJob,
    }
    return jobs[resource_type]()


class TaskRun:
    def __init__(
        self, task: Task, targets: frozenset[int] | None, parts: EngineParts, events: TaskEvents, note: str
    ) -> None:
        self.task = task
        self.targets = targets
        # Every write of this run (rows, files, events) goes through the fence: none once the lease may have
        # lapsed (engine/fence.py). The scheduler moves the deadline on at each renewal.
        self.fence = LeaseFence()
        self.parts = dataclasses.replace(
            parts,
            store=FencedStore(parts.store, self.fence),
            writer=FencedWriter(parts.writer, self.fence),
            media=FencedMedia(parts.media, self.fence),
        )
        self.events = events
        self.note = note
        self.stop_reason: StopReason | None = None
        self.done = asyncio.Event()
        # The event of the state the run ended in, for the scheduler to publish once the task's lease is
        # released: whoever sees it may act on the task at once, on any replica.
        self.final: TaskEvent | None = None
        self._inner: asyncio.Task[None] | None = None

    def stop(self, reason: StopReason) -> None:
        """Ask the run to stop; await `done` to know it has (its end state is then persisted)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        if self._inner is not None:
            self._inner.cancel()

    async def execute(self) -> None:
        # One span per run when tracing is on (a run started by StartTask joins that call's trace); the
        # tracker adds an event per batch of segments written, not a span per segment.
        attributes = {"mediadl.task_id": self.task.id, "mediadl.resource_type": self.task.resource_type.value}
        with spans.span("download run", attributes):
            await self._execute()

    async def _execute(self) -> None:
        settings = self.parts.settings
        tracker = ProgressTracker(
            self.task,
            self.events,
            self.parts.store,
            interval=settings.event_interval,
            heartbeat=settings.heartbeat,
            flush_interval=settings.flush_interval,
            metrics=self.parts.metrics,
            fence=self.fence,
        )
        job = make_job(self.task.resource_type)
        ctx = RunLedger(self.task, self.parts, tracker, job, self.targets)
        tracker.message = self.note
        try:
            tracker.publish()
            if 0 < settings.quarantine_after <= self.task.crash_count:
                await self._quarantine(tracker)
                return
            await ctx.load()
            tracker.start()
            crashed = False
            if self.stop_reason is None:
                self._inner = asyncio.create_task(self._work(job, ctx), name=f"job-{self.task.id}")
                await asyncio.wait([self._inner])
                crashed = not self._inner.cancelled() and self._inner.exception() is not None
                if crashed:
                    await self._record_crash(ctx, self._inner.exception())
                elif not self._inner.cancelled():
                    self.stop_reason = None  # it ended on its own before the stop took effect
            await tracker.stop()
            await self._finish(ctx, job, tracker, crashed)
        except LeaseLost:
            self._lease_lost()  # woke up past the lease: another replica's task now, write nothing
            await tracker.stop()
        except Exception as exc:
            await tracker.stop()
            await self._fail_safely(ctx, tracker, exc)
        finally:
            await _stop_building(job)
            self.done.set()

    async def _fail_safely(self, ctx: RunLedger, tracker: ProgressTracker, exc: Exception) -> None:
        """An exception outside the job (loading, the end state): the run still ends FAILED, never runnable
        again by itself, with the incident's reference in the failure record and in the logged stack."""
        incident = uuid.uuid4().hex[:12]
        log.error("download run failed [incident %s]", incident, exc_info=exc, extra={"task_id": self.task.id})
        if self.stop_reason in (Halt.LOST, Action.DELETE, Halt.SHUTDOWN):
            return  # another replica's task now, rows going, or handed back: nothing to write here
        task = self.task
        error = _internal(exc, incident)
        self._count_crash(True)
        try:
            if task.status is TaskStatus.PROCESSING:
                task.apply(Action.FINISH, outcome=TaskStatus.FAILED)
            await ctx.record_failure(WHOLE, task.resource_url, error)
            if task.crash_count >= self.parts.settings.quarantine_after > 0:
                task.last_error = _quarantined(task.crash_count)
            await save_state(self.parts.store, task)
            self.final = tracker.event(f"failed: {error.message}")
        except Exception:
            log.exception("the failed run could not be persisted [incident %s]", incident, extra={"task_id": task.id})

    async def _work(self, job: Job, ctx: RunLedger) -> None:
        """The job, then the final sweep; every fetch of both draws on one retry budget (in this task's context)."""
        fetch = self.parts.settings.fetch
        budget = RunRetries(floor=fetch.retry_budget_floor, ratio=fetch.retry_budget_ratio, note=_noter(ctx))
        RUN_RETRIES.set(budget)
        quota = self.parts.settings.user_quota_bytes
        if quota > 0:
            # Counted in the database (every replica's flushed counters): what this run may add on top.
            start, task = self.task.bytes_downloaded, self.task
            budget.quota_left = quota - await self.parts.store.user_bytes(task.user_id)
            budget.stored = lambda: task.bytes_downloaded - start
        await self._back_off(ctx)
        await job.run(ctx)
        await sweep(ctx, job, budget)

    def _count_crash(self, crashed: bool) -> None:
        """The run ended by itself (or failed unexpectedly): the crash streak and the re-claim count follow."""
        self.task.crash_count = self.task.crash_count + 1 if crashed else 0
        self.task.reclaims = 0

    async def _back_off(self, ctx: RunLedger) -> None:
        """After an interrupted run (reclaims > 1), wait a short, growing while (inside the job's task: a stop
        cancels the wait)."""
        settings = self.parts.settings
        if self.task.reclaims <= 1 or settings.reclaim_backoff <= 0:
            return
        wait = min(settings.reclaim_backoff_max, settings.reclaim_backoff * 2.0 ** min(self.task.reclaims - 2, 30))
        ctx.tracker.message = f"resuming after an interrupted run in {wait:.1f}s"
        ctx.tracker.publish()
        log.info("re-claimed after an interrupted run: waiting %.1fs", wait, extra={"task_id": self.task.id})
        await asyncio.sleep(wait)
        ctx.tracker.message = self.note

    async def _quarantine(self, tracker: ProgressTracker) -> None:
        """Runs of this task ended in an unexpected exception too often in a row: it is not run again."""
        task = self.task
        task.apply(Action.FINISH, outcome=TaskStatus.FAILED)
        task.last_error = _quarantined(task.crash_count)
        task.reclaims = 0
        await save_state(self.parts.store, task)
        self.final = tracker.event(f"failed: {task.last_error}")

    def _lease_lost(self) -> None:
        if self.stop_reason is not Halt.LOST:
            log.warning(
                "lost the lease of a running task: stopping it, nothing more is written",
                extra={"task_id": self.task.id},
            )
        self.stop_reason = Halt.LOST

    async def _record_crash(self, ctx: RunLedger, exc: BaseException | None) -> None:
        if isinstance(exc, LeaseLost) or not self.fence.holds():
            self._lease_lost()  # not a crash: the lease went while the job ran
            return
        incident = uuid.uuid4().hex[:12]
        log.error("download job crashed [incident %s]", incident, exc_info=exc, extra={"task_id": self.task.id})
        await ctx.record_failure(WHOLE, self.task.resource_url, _internal(exc, incident))

    async def _finish(self, ctx: RunLedger, job: Job, tracker: ProgressTracker, crashed: bool) -> None:
        task, store = self.task, self.parts.store
        if not self.fence.holds():
            self._lease_lost()
        reason = self.stop_reason
        if reason is Halt.LOST or reason is Action.DELETE:
            return  # the task is another replica's now, or its rows are going: not one more write
        await ctx.release_retries()
        await tracker.flush()
        if reason is Halt.SHUTDOWN:
            return
        self._count_crash(crashed)
        message = tracker.message
        if reason is Action.PAUSE:
            task.apply(Action.PAUSE)
            message = "paused; finished segments are kept"
        elif reason is Action.CANCEL:
            task.apply(Action.CANCEL)
            message = "cancelled"
        else:
            message = await self._end_by_itself(ctx, job, tracker, crashed)
        await save_state(store, task)
        if task.status.is_terminal:  # nothing continues an upload of an ended task (an orphan of a takeover)
            await abort_open_uploads(self.parts.storage, self.parts.media, task)
        self.final = tracker.event(message)
        self.parts.metrics.run_ended(task.status.value)

    async def _end_by_itself(self, ctx: RunLedger, job: Job, tracker: ProgressTracker, crashed: bool) -> str:
        """COMPLETED, PARTIAL_COMPLETED or FAILED, with what the run produced; the final event's message."""
        task = self.task
        status = TaskStatus.FAILED if crashed else ctx.outcome()
        video = None
        storage, media = self.parts.storage, self.parts.media
        if status is not TaskStatus.FAILED:
            # A remote store: what another replica (or an earlier run) published comes back to the work area
            # first, so the playlist, the remux and the thumbnail read local files as they always did.
            await materialize(storage, media, task)
            video = await job.result(ctx, ended=True)
        if video is not None:
            video = await finish_output(storage, task, await ctx.every_segment(), video, building_of(job))
            await publish_output(storage, media, task, video)
        if status is TaskStatus.COMPLETED:
            task.last_error = ""
        if crashed and task.crash_count >= self.parts.settings.quarantine_after > 0:
            task.last_error = _quarantined(task.crash_count)
        task.apply(Action.FINISH, outcome=status)
        if video is not None:
            video.id = str(uuid.uuid4())
            video.file_path = self.parts.storage.relative(video.file_path)  # as API.md shows paths
            await self.parts.store.save_video(video)
            await clear_work_area(storage, media, task, lambda: job.leftovers(ctx))
        # Keep what the job said along the way (the chosen variant, why a live recording ended); drop only the
        # run's start note, which would be stale now.
        return _end_message(task, "" if tracker.message == self.note else tracker.message)


async def _stop_building(job: Job) -> None:
    """An incremental MP4 build the end of the run did not take (paused, cancelled, crashed, lease lost)
    stops, its temporary file removed: the MP4 of a later run is built from the segments."""
    building = building_of(job)
    if building is not None:
        await building.abandon()


def _quarantined(crashes: int) -> str:
    return (
        f"quarantined: {crashes} runs in a row ended in an internal error (see the server log); it is not run "
        "again: create a new task to try once more"
    )


def _internal(exc: BaseException | None, incident: str) -> FetchError:
    """The failure record of an unexpected exception: its cause, and the reference to find its stack in the log."""
    cause = f"{type(exc).__name__}: {exc}" if exc is not None else "unknown"
    # The message may quote what an origin sent: no control character reaches a record or a database.
    cause = "".join(ch if ch.isprintable() else "?" for ch in cause)
    return FetchError(ErrorType.INTERNAL, f"internal error ({cause[:120]}) [incident {incident}]; see the server log")


def _noter(ctx: RunLedger) -> Callable[[str], None]:
    def note(message: str) -> None:
        ctx.tracker.message = message

    return note


def _end_message(task: Task, detail: str) -> str:
    """What the final event of a run that ended by itself says, with the job's own note if it left one."""
    if task.status is TaskStatus.COMPLETED:
        outcome = "completed"
    elif task.status is TaskStatus.PARTIAL_COMPLETED:
        outcome = f"partially completed: {task.segments_failed} segment(s) failed (retry with RetryTask)"
    else:
        outcome = f"failed: {task.last_error}" if task.last_error else "failed"
    return f"{outcome}; {detail}" if detail else outcome
