"""A live MPD fetched before its stream has begun (availabilityStartTime still ahead, or no segment complete
yet) lists no segment. The first plan polls it until it does instead of failing at once, for at most
DOWNLOAD_LIVE_OUTAGE_SECONDS: the grace API.md gives a live source that lists nothing new before the recording
ends. A start the MPD itself puts further ahead than that fails at once, saying when the stream starts (a
task waiting hours would hold a download slot; it can be retried nearer the time)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.jobs.hls_playlist import MediaPlaylist
from download_server.engine.jobs.ledger import RunLedger
from download_server.engine.jobs.mpd_model import Manifest

Loader = Callable[[RunLedger, str], Awaitable[MediaPlaylist]]


async def load_when_started(
    ctx: RunLedger, url: str, load: Loader, latest: Callable[[], Manifest | None]
) -> MediaPlaylist:
    """`load` the MPD at `url` until it lists a segment, the grace runs out (the caller then finds no segment
    and fails as before) or the MPD's start lies past the grace (FetchError). `latest` is what load parsed."""
    settings = ctx.parts.settings
    grace = settings.live_outage_seconds
    deadline = time.monotonic() + grace
    source = await load(ctx, url)
    while (manifest := latest()) is not None and _waiting(ctx, manifest):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if manifest.starts_in > left:
            raise FetchError(
                ErrorType.PLAYLIST,
                f"the live MPD starts in {manifest.starts_in:.0f} s (availabilityStartTime), later than the "
                f"{grace:.0f} s of DOWNLOAD_LIVE_OUTAGE_SECONDS a recording waits for it",
            )
        ctx.tracker.message = _waiting_message(manifest, left)
        interval = settings.live_poll_interval or max(1.0, manifest.update_period)
        # Until the announced start the MPD is asked once; from then on every interval, as a live MPD is.
        await asyncio.sleep(min(left, max(manifest.starts_in, interval)))
        source = await load(ctx, url)
    return source


def _waiting(ctx: RunLedger, manifest: Manifest) -> bool:
    """A live MPD that lists nothing yet, on a first plan (a stored plan is followed as it is)."""
    return manifest.dynamic and not manifest.listed and not ctx.plan.total


def _waiting_message(manifest: Manifest, left: float) -> str:
    when = f"starts in {manifest.starts_in:.0f} s" if manifest.starts_in else "lists no segment yet"
    return f"the live MPD {when}; waiting (at most {left:.0f} s more)"
