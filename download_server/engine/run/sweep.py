"""The final sweep: before a run may end partial, segments that failed with a retryable error are tried again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from download_server.engine.failures import FetchError
from download_server.engine.http.budget import RunRetries
from download_server.engine.http.circuit import host_of
from download_server.engine.jobs.ledger import Job, RunLedger

log = logging.getLogger(__name__)


async def sweep(ctx: RunLedger, job: Job, budget: RunRetries) -> None:
    """Rounds of re-attempts, with the backoff and Retry-After rules, until nothing retryable is left, the
    run's retry budget is spent or `sweep_seconds` have passed. Permanent errors (404, 410, a refused URL,
    bad content) are never swept; a live recording sweeps only what its window still lists."""
    settings = ctx.parts.settings
    if not ctx.sweepable() or settings.sweep_seconds <= 0:
        return
    budget.deadline = time.monotonic() + settings.sweep_seconds
    swept: set[int] = set()
    for number in range(1, 1_000_000):
        due = [index for index in ctx.sweepable() if budget.take()]
        wait = _wait(ctx, due, number)
        if not due or time.monotonic() + wait >= budget.deadline:
            break
        swept.update(due)
        ctx.tracker.message = describe(ctx, due)
        ctx.tracker.publish()  # now, not at the next tick: a short round could replace the message unseen
        log.info("final sweep, round %d: %s", number, ctx.tracker.message, extra={"task_id": ctx.task.id})
        await asyncio.sleep(wait)
        await ctx.prepare_retries(due)
        ctx.replan = False  # the plan stands: only the swept segments are fetched again
        await job.run(ctx)
    if swept:
        recovered = len(swept) - sum(1 for index in swept if index in ctx.errors)
        ctx.tracker.message = f"final sweep: {recovered} of {len(swept)} failed segment(s) recovered"


def _wait(ctx: RunLedger, due: list[int], number: int) -> float:
    """The backoff of this round, at least the longest Retry-After any of its errors asked for (capped)."""
    fetch = ctx.parts.settings.fetch
    wait = min(fetch.backoff_max, fetch.backoff_base * 2.0 ** (number - 1))
    asked = [ctx.errors[i].retry_after or 0.0 for i in due if i in ctx.errors]
    return max([wait, *(min(a, fetch.retry_after_max) for a in asked)])


def describe(ctx: RunLedger, due: list[int]) -> str:
    """'retrying 2 failed segments: 2 x HTTP 503 from cdn.example.com' (the causes, most common first)."""
    causes: Counter[str] = Counter()
    for index in due:
        error, failure = ctx.errors.get(index), ctx.open_failures.get(index)
        if error is not None:
            url = failure.segment_url if failure is not None else ctx.task.resource_url
            causes[f"{_cause(error)} from {host_of(url)}"] += 1
    what = ", ".join(f"{count} x {cause}" for cause, count in causes.most_common(3))
    more = "" if len(causes) <= 3 else f" and {len(causes) - 3} more"
    noun = "segment" if len(due) == 1 else "segments"
    return f"retrying {len(due)} failed {noun}: {what}{more}"


def _cause(error: FetchError) -> str:
    return f"HTTP {error.http_status}" if error.http_status else error.error_type.value
