"""Use cases of the auth server: accounts (register, profile, password, lookup) and sessions (login, refresh, logout).

Every use case is async; SQL runs in the database thread pool and bcrypt in a pool of its own, so a burst of
logins (each a bcrypt round-trip) never makes the calls that need no hashing wait for a database thread.
"""

from __future__ import annotations

from auth_server.services.accounts import AccountService
from auth_server.services.auth_service import AuthService
from auth_server.services.common import USER_INACTIVE, utc_now
from auth_server.services.sessions import LOGIN_FAILED, REFRESH_TOKEN_REUSED, SessionService

__all__ = [
    "LOGIN_FAILED",
    "REFRESH_TOKEN_REUSED",
    "USER_INACTIVE",
    "AccountService",
    "AuthService",
    "SessionService",
    "utc_now",
]
