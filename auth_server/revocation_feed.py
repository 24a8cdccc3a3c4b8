"""The auth server's own revocation list: revocations it commits are added at once (on_revoked), and those
other replicas commit are read from the shared database every AUTH_REVOCATION_POLL_SECONDS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from auth_server.services.admin import AdminService
from auth_server.services.common import OnRevoked
from mediadl_common.revocations import RevocationList

log = logging.getLogger(__name__)
# Re-read a little of the past each time: a replica's commit may land just after our previous read.
OVERLAP = timedelta(seconds=5)


def local_revocations(revocations: RevocationList, loop: asyncio.AbstractEventLoop) -> OnRevoked:
    """An OnRevoked that hands the revocation to the event loop's thread (services call it from the pool);
    it runs before the RPC that caused it answers, so this replica refuses the tokens at once."""

    def on_revoked(user_id: str, when: datetime) -> None:
        loop.call_soon_threadsafe(revocations.add, user_id, when.timestamp())

    return on_revoked


async def start_revocation_feed(
    admin: AdminService, revocations: RevocationList, interval: float
) -> Callable[[], Awaitable[None]]:
    """Load what is in force now, then follow the database; returns the coroutine function that stops it."""
    since: datetime | None = None

    async def poll_once() -> None:
        nonlocal since
        found = await admin.recent_revocations(since)
        revocations.merge((user_id, when.timestamp()) for user_id, when in found.entries)
        since = found.server_time - OVERLAP

    async def follow() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await poll_once()
            except Exception:  # a lost database must not end the feed: the next round tries again
                log.warning("could not read revocations from the database; keeping the last list", exc_info=True)

    await poll_once()
    task = asyncio.create_task(follow(), name="revocation-feed")

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return stop
