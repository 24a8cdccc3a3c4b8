"""The first step of an HLS or DASH run asked to plan: load the playlist or MPD and store its segments, or
resume the plan already stored when the source cannot be loaded (a retry after the origin went away)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.jobs.ledger import RunLedger
from download_server.engine.jobs.parts import WHOLE

log = logging.getLogger(__name__)
S = TypeVar("S")  # the source as loaded
F = TypeVar("F")  # the source to follow


async def plan_or_resume(
    ctx: RunLedger,
    what: str,
    load: Callable[[RunLedger, str], Awaitable[S]],
    adopt: Callable[[RunLedger, S], Awaitable[F]],
) -> tuple[bool, F | None]:
    """Whether the run goes on, and the source it follows. A run asked to plan (ctx.replan) loads the source
    `what` names from the task's URL, then has `adopt` store its segments (it answers what to follow). A
    FetchError with a plan stored resumes that plan without a source (the segments do not need it any more);
    with none stored, or when the source lists no segments, the failure is recorded against the whole
    resource and the run stops."""
    if not ctx.replan:
        return True, None  # a retry of some segments: the stored plan, without the source
    try:
        loaded = await load(ctx, ctx.task.resource_url)
        await ctx.resolve(WHOLE, 0)  # loaded: a failure of the whole resource is over
        source = await adopt(ctx, loaded)
    except FetchError as exc:
        if not ctx.plan.total:
            await ctx.record_failure(WHOLE, ctx.task.resource_url, exc)
            return False, None
        log.warning(
            "%s refresh failed, resuming the stored plan: %s", what, exc.message, extra={"task_id": ctx.task.id}
        )
        return True, None
    if not ctx.plan.total:
        error = FetchError(ErrorType.PLAYLIST, f"the {what} lists no segments")
        await ctx.record_failure(WHOLE, ctx.task.resource_url, error)
        return False, None
    return True, source
