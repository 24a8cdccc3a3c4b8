"""Holds the caller's tokens and refreshes them single-flight, so concurrent calls rotate the refresh token once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager

from clients.errors import AuthenticationError, not_logged_in
from clients.tokens import Tokens, TokenStore

log = logging.getLogger(__name__)

Refresher = Callable[[str], Awaitable[Tokens]]


class Session:
    """The token store plus the refresh protocol.

    Refresh tokens rotate and a reused one revokes the whole login, so two refreshes of the same pair must
    never both reach the server. Every refresh names the access token that failed; under one lock (and the
    store's own cross-process lock) the first caller rotates, and later callers find a different access
    token already stored and simply use it.
    """

    def __init__(self, store: TokenStore, refresher: Refresher) -> None:
        self.store = store
        self._refresher = refresher
        self._lock = asyncio.Lock()

    def access_token(self) -> str:
        tokens = self.store.load()
        if tokens is None:
            raise not_logged_in()
        return tokens.access_token

    def refresh_token(self) -> str:
        tokens = self.store.load()
        if tokens is None:
            raise not_logged_in()
        return tokens.refresh_token

    async def refresh(self, stale_access_token: str | None = None) -> str:
        """Make sure the stored access token is newer than `stale_access_token`; return the one to use.

        With no `stale_access_token` the pair is rotated unconditionally (an explicit refresh).
        """
        async with self._lock:
            exclusive = self.store.exclusive()
            await _enter_off_loop(exclusive)
            try:
                current = self.store.load()
                if current is None:
                    raise not_logged_in()
                if stale_access_token is not None and current.access_token != stale_access_token:
                    return current.access_token
                try:
                    fresh = await self._refresher(current.refresh_token)
                except AuthenticationError:
                    # The refresh token is dead (expired, revoked, or reused): the login is over.
                    log.info("refresh refused: clearing the stored tokens")
                    self.store.clear()
                    raise
                self.store.save(fresh)
                return fresh.access_token
            finally:
                exclusive.__exit__(None, None, None)


async def _enter_off_loop(manager: AbstractContextManager[None]) -> None:
    """Enter a blocking context manager (a file lock held by another process) without stalling the loop."""
    entering = asyncio.ensure_future(asyncio.to_thread(manager.__enter__))
    try:
        await asyncio.shield(entering)
    except asyncio.CancelledError:
        # The thread cannot be interrupted: release the lock once it has been taken, or it would leak.
        entering.add_done_callback(
            lambda f: None if f.cancelled() or f.exception() else manager.__exit__(None, None, None)
        )
        raise
