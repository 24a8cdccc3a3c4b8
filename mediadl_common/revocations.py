"""The revoked users a token verifier refuses: user id -> moment before which their access tokens are void.

Both servers hold one in memory (the download servers fill it by polling the auth server's ListRevocations,
the auth server from its own database), so checking a token never costs a call or a query. Bounded: entries
older than any access token can be are useless and go first; past `max_entries` the oldest go anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

MAX_ENTRIES = 100_000
# No access token lives longer than this by default (JWT_ACCESS_TOKEN_EXPIRE_MINUTES is 30): keep a margin.
DEFAULT_RETENTION_SECONDS = 24 * 3600.0


class RevocationList:
    """In-memory, single event loop: no locks. `revoke_time` values are UNIX seconds (sub-second)."""

    def __init__(
        self,
        *,
        max_entries: int = MAX_ENTRIES,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._entries: dict[str, float] = {}
        self._max_entries = max_entries
        self._retention = retention_seconds
        self._clock = clock
        self.last_update: float | None = None  # when the source last answered (None: never yet)

    def __len__(self) -> int:
        return len(self._entries)

    def revoked(self, user_id: str, issued_at: float) -> bool:
        """True if a token of `user_id` issued at `issued_at` was issued before the user's revocation."""
        revoke_time = self._entries.get(user_id)
        return revoke_time is not None and issued_at < revoke_time

    def add(self, user_id: str, revoke_time: float) -> None:
        if revoke_time > self._entries.get(user_id, float("-inf")):
            self._entries[user_id] = revoke_time

    def merge(self, revocations: Iterable[tuple[str, float]]) -> None:
        """Take what the source said (later revocations of one user win), then drop what has aged out."""
        for user_id, revoke_time in revocations:
            self.add(user_id, revoke_time)
        self.last_update = self._clock()
        self._prune()

    def _prune(self) -> None:
        horizon = self._clock() - self._retention
        if any(t < horizon for t in self._entries.values()):
            self._entries = {user: t for user, t in self._entries.items() if t >= horizon}
        if len(self._entries) > self._max_entries:
            newest = sorted(self._entries.items(), key=lambda item: item[1])[-self._max_entries :]
            self._entries = dict(newest)
