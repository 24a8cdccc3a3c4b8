"""Browser sessions kept in memory: signed cookie ids, session-bound CSRF tokens, and expiry with the refresh token.

The browser holds only a signed random id. The token pair lives here, inside the session's own client,
so no script in the page (and no XSS) can read a token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt

from clients import AsyncClient, User
from dashboard.relay import EventHub

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class CookieSigner:
    """HMAC-SHA256 over a value, keyed by the session secret; also derives per-purpose tokens."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, purpose: str, value: str) -> str:
        digest = hmac.new(self._secret, f"{purpose}\0{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, value: str, *, purpose: str = "session") -> str:
        return f"{value}.{self._mac(purpose, value)}"

    def unsign(self, signed: str | None, *, purpose: str = "session") -> str | None:
        """The value if the signature is right, else None (tampered, foreign or malformed)."""
        if not signed:
            return None
        value, sep, mac = signed.rpartition(".")
        if not sep or not value or not hmac.compare_digest(mac, self._mac(purpose, value)):
            return None
        return value

    def token(self, purpose: str, value: str) -> str:
        """A token only this server can compute for `value` (CSRF tokens before login)."""
        return self._mac(purpose, value)


def refresh_token_expiry(refresh_token: str) -> float:
    """The refresh token's `exp`. Read, not verified: the token came straight from the auth server, and the
    auth server stays the one that accepts or refuses it."""
    try:
        claims = jwt.decode(refresh_token, options={"verify_signature": False})
        return float(claims["exp"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return 0.0  # unreadable: treat as already expired rather than as eternal


@dataclass(eq=False)
class UserSession:
    """One logged-in browser: its client (holding the tokens), user, CSRF token and live event hub."""

    id: str
    client: AsyncClient
    user: User
    csrf_token: str
    hub: EventHub
    last_seen: float
    closed: bool = field(default=False)

    def expires_at(self) -> float:
        """When the current refresh token expires (0 once the client has dropped its tokens)."""
        tokens = self.client.tokens.load()
        return refresh_token_expiry(tokens.refresh_token) if tokens is not None else 0.0

    async def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        await self.hub.close(reason)
        await self.client.close()


class SessionStore:
    """Sessions by id. A session ends at logout, when its refresh token expires or is refused, or when idle."""

    def __init__(self, *, idle_timeout: float, clock: Clock = time.time) -> None:
        self._sessions: dict[str, UserSession] = {}
        self._idle_timeout = idle_timeout
        self._clock = clock

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, client: AsyncClient, user: User) -> UserSession:
        """A new session with a fresh random id (never reusing one the browser sent: no session fixation)."""
        session_id = secrets.token_urlsafe(32)
        session = UserSession(
            id=session_id,
            client=client,
            user=user,
            csrf_token=secrets.token_urlsafe(32),
            hub=EventHub(lambda: client.watch_all()),
            last_seen=self._clock(),
        )
        self._sessions[session_id] = session
        # The user id goes in the message: the log record factory owns the `user_id` field (from the context).
        log.info("session opened for user %s", user.id)
        return session

    def peek(self, session_id: str) -> UserSession | None:
        """The session with that id as it is: not touched, not expired (for inspection)."""
        return self._sessions.get(session_id)

    async def lookup(self, session_id: str | None) -> UserSession | None:
        """The live session with that id, touched; an expired one is closed and None returned."""
        session = self._sessions.get(session_id) if session_id else None
        if session is None:
            return None
        now = self._clock()
        if self._expired(session, now):
            await self.remove(session.id, reason="expired")
            return None
        session.last_seen = now
        return session

    async def remove(self, session_id: str, *, reason: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            log.info("session of user %s closed (%s)", session.user.id, reason)
            await session.close(reason)

    async def sweep(self) -> int:
        """Close every expired session (their open event streams end with reason "expired"); how many."""
        now = self._clock()
        expired = [s.id for s in self._sessions.values() if self._expired(s, now)]
        for session_id in expired:
            await self.remove(session_id, reason="expired")
        return len(expired)

    async def close_all(self) -> None:
        for session_id in list(self._sessions):
            await self.remove(session_id, reason="shutdown")

    async def run_sweeper(self, interval: float) -> None:
        """Sweep forever (a background task of the app) so idle sessions do not hold channels and streams."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:  # one bad close must not end the sweeping for everyone else
                log.exception("session sweep failed")

    def _expired(self, session: UserSession, now: float) -> bool:
        return now >= session.expires_at() or now - session.last_seen >= self._idle_timeout
