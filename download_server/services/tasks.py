"""Task use cases: create, list, get, update, delete; the state changes; and the progress streams."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection
from contextlib import aclosing
from dataclasses import dataclass

from download_server.domain.lifecycle import Action
from download_server.domain.listing import TaskQuery
from download_server.domain.models import OutputFormat, ResourceType, Task, TaskEvent, TaskStatus, utcnow
from download_server.domain.ports import Scheduler, TaskFiles, UrlChecker
from download_server.domain.repositories import Transactions, UnitOfWork
from download_server.services.pagination import Listing, paginate, parse_order_by
from download_server.services.validation import (
    MAX_LIVEROOM_ID,
    MAX_TITLE,
    check_length,
    check_url_field,
    check_uuid,
    require_uuid,
)
from mediadl_common.errors import InvalidArgument, ResourceExhausted, Validator
from mediadl_common.page_tokens import PageTokens, scope_of

log = logging.getLogger(__name__)

UPDATABLE_FIELDS = ("liveroom_title", "liveroom_url", "resource_url")


@dataclass(frozen=True)
class NewTask:
    video_id: str
    liveroom_id: str
    liveroom_title: str
    liveroom_url: str
    resource_url: str
    resource_type: ResourceType | None  # None: the caller left it unspecified
    output_format: OutputFormat | None = None  # None: unspecified (HLS, the source's own form)
    max_duration_seconds: int = 0


@dataclass(frozen=True)
class TaskChanges:
    """UpdateTask: the values, and which of them to apply (the field mask, already expanded if empty)."""

    task_id: str
    paths: tuple[str, ...]
    liveroom_title: str = ""
    liveroom_url: str = ""
    resource_url: str = ""


@dataclass(frozen=True)
class TaskListRequest:
    page_size: int = 0
    page_token: str = ""
    statuses: tuple[TaskStatus, ...] = ()
    order_by: str = ""


class TaskService:
    """Every method takes the authenticated caller's id first; other users' tasks do not exist for them."""

    def __init__(
        self,
        transactions: Transactions,
        scheduler: Scheduler,
        tokens: PageTokens,
        check_url: UrlChecker,
        files: TaskFiles,
        quota_bytes: int = 0,
    ) -> None:
        self._quota = quota_bytes  # DOWNLOAD_USER_QUOTA_BYTES (0: none)
        self._tx = transactions
        self._scheduler = scheduler
        self._tokens = tokens
        self._check_url = check_url
        self._files = files

    async def create_task(self, user_id: str, new: NewTask) -> Task:
        v = Validator()
        video_id = check_uuid(v, new.video_id, "video_id")
        check_length(v, new.liveroom_id, "liveroom_id", minimum=1, maximum=MAX_LIVEROOM_ID)
        check_length(v, new.liveroom_title, "liveroom_title", maximum=MAX_TITLE)
        v.check(new.resource_type is not None, "resource_type", "is required (HLS, MP4, IMAGE, FLV or DASH)")
        await check_url_field(v, new.liveroom_url, "liveroom_url", self._check_url, required=False)
        await check_url_field(v, new.resource_url, "resource_url", self._check_url, required=True)
        _check_output(v, new)
        v.raise_if_any()
        assert new.resource_type is not None
        task = Task(
            id=str(uuid.uuid4()),
            user_id=user_id,
            video_id=video_id,
            liveroom_id=new.liveroom_id,
            liveroom_title=new.liveroom_title,
            liveroom_url=new.liveroom_url,
            resource_url=new.resource_url,
            resource_type=new.resource_type,
            output_format=new.output_format or OutputFormat.HLS,
            max_duration_seconds=new.max_duration_seconds,
        )
        await self._tx.run(lambda uow: uow.tasks.add(task))
        log.info("task created", extra={"task_id": task.id, "resource_type": task.resource_type.value})
        return task

    async def list_tasks(self, user_id: str, request: TaskListRequest) -> Listing[Task]:
        ordering = parse_order_by(request.order_by)
        statuses = tuple(sorted(set(request.statuses)))
        query = TaskQuery(user_id=user_id, statuses=statuses, ordering=ordering)
        scope = scope_of("ListTasks", user_id, [s.value for s in statuses], str(ordering))
        return await paginate(
            self._tokens,
            scope,
            request.page_size,
            request.page_token,
            lambda cursor, limit: self._tx.run(lambda uow: uow.tasks.page(query, cursor, limit)),
        )

    async def get_task(self, user_id: str, task_id: str) -> Task:
        return await self._get(user_id, require_uuid(task_id, "task_id"))

    async def update_task(self, user_id: str, changes: TaskChanges) -> Task:
        task_id = await self._check_changes(changes)
        updated, resource_changed = await self._tx.run(lambda uow: _apply_changes(uow, task_id, user_id, changes))
        if resource_changed:
            # The rows went in the same transaction; the files go now, so that nothing fetched from the old
            # URL (a .part an MP4 run would continue with Range, a segment file) is ever taken for the new one.
            await self._files.remove(updated, None)
            log.info("resource_url changed: download state reset", extra={"task_id": task_id})
        return updated

    async def _check_changes(self, changes: TaskChanges) -> str:
        """The canonical task id, or INVALID_ARGUMENT naming every bad field of the request."""
        v = Validator()
        task_id = check_uuid(v, changes.task_id, "task_id")
        unknown = sorted(set(changes.paths) - set(UPDATABLE_FIELDS))
        v.check(not unknown, "update_mask", f"unknown or read-only field(s) {unknown}; may hold {UPDATABLE_FIELDS}")
        paths = set(changes.paths)
        if "liveroom_title" in paths:
            check_length(v, changes.liveroom_title, "liveroom_title", maximum=MAX_TITLE)
        if "liveroom_url" in paths:
            await check_url_field(v, changes.liveroom_url, "liveroom_url", self._check_url, required=False)
        if "resource_url" in paths:
            await check_url_field(v, changes.resource_url, "resource_url", self._check_url, required=True)
        v.raise_if_any()
        return task_id

    async def delete_task(self, user_id: str, task_id: str, *, delete_files: bool) -> None:
        task_id = require_uuid(task_id, "task_id")
        # The scheduler checks the owner before it stops anything, and removes the rows in one transaction.
        deleted = await self._scheduler.delete(task_id, user_id)
        if delete_files:
            await self._files.remove(deleted.task, deleted.video)
        log.info("task deleted", extra={"task_id": task_id, "delete_files": delete_files})

    async def pause_task(self, user_id: str, task_id: str) -> Task:
        return await self._act(user_id, task_id, Action.PAUSE, self._scheduler.pause)

    async def resume_task(self, user_id: str, task_id: str) -> Task:
        return await self._act(user_id, task_id, Action.RESUME, self._scheduler.resume)

    async def cancel_task(self, user_id: str, task_id: str) -> Task:
        return await self._act(user_id, task_id, Action.CANCEL, self._scheduler.cancel)

    # Progress streams: act (or not), then follow the task. Ownership is checked before anything happens,
    # so another user's task is NOT_FOUND before the first message.

    def start_task(self, user_id: str, task_id: str) -> AsyncGenerator[TaskEvent, None]:
        """Start (or, if it is running or queued already, attach to) the task and follow it."""
        return self._follow(user_id, task_id, "start", self._scheduler.start)

    def retry_task(self, user_id: str, task_id: str) -> AsyncGenerator[TaskEvent, None]:
        """Fetch again what the task's open failure records name, and follow it."""
        return self._follow(user_id, task_id, "retry", self._scheduler.retry)

    def watch_task(self, user_id: str, task_id: str) -> AsyncGenerator[TaskEvent, None]:
        return self._follow(user_id, task_id, "watch", None)

    def watch_tasks(self, user_id: str, statuses: Collection[TaskStatus]) -> AsyncGenerator[TaskEvent, None]:
        """Every task of the caller (in `statuses`, if any): current states, then every event; never ends."""
        wanted = tuple(sorted(set(statuses)))
        return self._scheduler.watch_user(
            user_id, lambda: self._tx.run(lambda uow: uow.tasks.of_user(user_id, wanted)), wanted
        )

    async def _follow(
        self, user_id: str, task_id: str, action: str, step: Callable[[str], Awaitable[None]] | None
    ) -> AsyncGenerator[TaskEvent, None]:
        task_id = require_uuid(task_id, "task_id")
        task = await self._get(user_id, task_id)
        if step is not None:
            if task.status is not TaskStatus.PROCESSING and task.queued_time is None:
                await self._check_quota(user_id)  # attaching to a running or queued task costs nothing
            await step(task_id)
            log.info("task %s", action, extra={"task_id": task_id})
        # Downloads belong to the scheduler: leaving this loop (the client went away) only unsubscribes.
        async with aclosing(self._scheduler.watch(task_id, lambda: self._get(user_id, task_id))) as events:
            async for event in events:
                yield event

    async def _check_quota(self, user_id: str) -> None:
        """StartTask/RetryTask while the user's tasks hold the quota or more: RESOURCE_EXHAUSTED, QUOTA_EXCEEDED.
        Counted in the database, so every replica gives the same answer."""
        if self._quota <= 0:
            return
        used = await self._tx.run(lambda uow: uow.tasks.stored_bytes(user_id))
        if used >= self._quota:
            raise ResourceExhausted(
                f"your downloads hold {used} bytes, the quota is {self._quota} (DOWNLOAD_USER_QUOTA_BYTES): "
                "delete some tasks (with their files) to start more",
                reason="QUOTA_EXCEEDED",
            )

    async def _act(self, user_id: str, task_id: str, action: Action, step: Callable[[str], Awaitable[None]]) -> Task:
        task_id = require_uuid(task_id, "task_id")
        task = await self._get(user_id, task_id)
        # Checked here for a clear FAILED_PRECONDITION; the scheduler checks again under its own lock.
        action.check(task.status)
        await step(task_id)
        log.info("task %s", action, extra={"task_id": task_id})
        return await self._get(user_id, task_id)

    async def _get(self, user_id: str, task_id: str) -> Task:
        return await self._tx.read_task(task_id, user_id)


def _apply_changes(uow: UnitOfWork, task_id: str, user_id: str, changes: TaskChanges) -> tuple[Task, bool]:
    """UpdateTask's one transaction: the changed task, and whether its resource (so its download) changed."""
    task = uow.tasks.get(task_id, user_id, lock=True)
    paths = set(changes.paths)
    if "liveroom_title" in paths:
        task.liveroom_title = changes.liveroom_title
    if "liveroom_url" in paths:
        task.liveroom_url = changes.liveroom_url
    resource_changed = False
    if "resource_url" in paths and changes.resource_url != task.resource_url:
        # A live recording swaps its URL and goes on (the run reads it at its next poll); else a new start.
        resource_changed = task.change_resource(changes.resource_url)
    if resource_changed:
        # What was downloaded so far is obsolete: its rows go, and no failure of it can be retried.
        uow.segments.remove_all(task_id)
        uow.videos.remove_of_task(task_id)
        uow.failures.abandon_open(task_id, task.update_time)
    if paths:
        task.update_time = utcnow()
    uow.tasks.save(task)
    return task, resource_changed


# Output choices belong to the stream kinds that have segments; an MP4 or image is one file already.
_STREAM_TYPES = (ResourceType.HLS, ResourceType.DASH, ResourceType.FLV)
MAX_DURATION_SECONDS = 7 * 24 * 3600


def _check_output(v: Validator, new: NewTask) -> None:
    streams = new.resource_type in _STREAM_TYPES or new.resource_type is None
    v.check(
        streams or new.output_format in (None, OutputFormat.HLS),
        "output_format",
        "applies to stream tasks only (HLS, DASH, FLV; an MP4 or IMAGE task is one file already)",
    )
    v.check(
        0 <= new.max_duration_seconds <= MAX_DURATION_SECONDS,
        "max_duration_seconds",
        f"must be between 0 (no limit) and {MAX_DURATION_SECONDS}",
    )
    v.check(streams or new.max_duration_seconds == 0, "max_duration_seconds", "applies to live stream recordings only")


def expand_mask(paths: Collection[str], set_fields: Collection[str]) -> tuple[str, ...]:
    """An empty update mask means "every field set in the request" (API.md)."""
    if paths:
        return tuple(dict.fromkeys(p.strip() for p in paths))
    if not set_fields:
        raise InvalidArgument.field("update_mask", "nothing to update: set a field or name it in update_mask")
    return tuple(set_fields)
