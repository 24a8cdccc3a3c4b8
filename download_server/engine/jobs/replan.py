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
S = TypeVar("S")


async def plan_or_resume(ctx: RunLedger, what: str, plan: Callable[[], Awaitable[S]]) -> tuple[bool, S | None]:
    """Run `plan` (load the source `what` names, store its segments; it answers what to follow) and say
    whether the run goes on, with the source to follow. A FetchError with a plan stored resumes that plan
    without a source (the segments do not need it any more); with none stored, or when the source lists no
    segments, the failure is recorded against the whole resource and the run stops."""
    try:
        source = await plan()
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
