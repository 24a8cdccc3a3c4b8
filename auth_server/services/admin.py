"""Superuser use cases (ListUsers, UpdateUser) and the revocations download servers poll (ListRevocations)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from auth_server.domain.admin import UserChanges
from auth_server.domain.ports import BlockingRunner, UnitOfWork
from auth_server.domain.users import CONTROL_CHARS, User, parse_user_id
from auth_server.services.common import require_active, utc_now
from auth_server.services.paging import page_size
from mediadl_common.errors import InvalidArgument, NotFound, PermissionDenied
from mediadl_common.page_tokens import PageTokens, scope_of

log = logging.getLogger(__name__)
MAX_QUERY_CHARS = 254


@dataclass(frozen=True)
class UserPage:
    users: list[User]
    next_page_token: str
    total_size: int


@dataclass(frozen=True)
class Revocations:
    """Users whose access tokens issued before their time are refused, and the auth server's clock."""

    entries: list[tuple[str, datetime]]
    server_time: datetime


class AdminService:
    """`on_revoked(user_id, when)` hears each revocation this process commits, from a database thread (the
    composition root hands it to the local verifier's list on the event loop)."""

    def __init__(
        self,
        *,
        runner: BlockingRunner,
        uow: Callable[[], UnitOfWork],
        page_tokens: PageTokens,
        service_token: str | None,
        access_ttl_seconds: int,
        clock: Callable[[], datetime] = utc_now,
        on_revoked: Callable[[str, datetime], None] = lambda _user, _when: None,
    ) -> None:
        self._run = runner.run
        self._uow = uow
        self._tokens = page_tokens
        self._service_token = service_token.encode() if service_token else None
        self._access_ttl = timedelta(seconds=access_ttl_seconds)
        self._clock = clock
        self._on_revoked = on_revoked

    async def list_users(self, caller_id: str, *, size: int, token: str, query: str) -> UserPage:
        if len(query) > MAX_QUERY_CHARS or CONTROL_CHARS.search(query):
            raise InvalidArgument.field(
                "query", f"must be at most {MAX_QUERY_CHARS} characters without control characters"
            )
        limit = page_size(size)
        scope = scope_of("ListUsers", caller_id, query.lower())
        cursor = self._tokens.decode(token, scope)
        users, total = await self._run(self._search, caller_id, query, cursor, limit + 1)
        more = len(users) > limit
        users = users[:limit]
        next_token = self._tokens.encode(scope, users[-1].create_time, users[-1].id) if more else ""
        return UserPage(users, next_token, total)

    async def update_user(self, caller_id: str, changes: UserChanges) -> User:
        user_id = parse_user_id(changes.user_id)
        changes.selected()  # validate before touching the database
        return await self._run(self._update, caller_id, user_id, changes)

    def authorize_service(self, bearer: str) -> None:
        """ListRevocations is for services presenting AUTH_SERVICE_TOKEN (compared in constant time); everyone
        else, and everyone while it is unset, is refused."""
        if self._service_token is None or not hmac.compare_digest(bearer.encode(), self._service_token):
            raise PermissionDenied("ListRevocations is for services presenting AUTH_SERVICE_TOKEN")

    async def recent_revocations(self, since: datetime | None) -> Revocations:
        """Revocations at or after `since` (None: all still in force), for this server's own verifier too."""
        now = self._clock()
        # Older revocations concern only tokens that have expired anyway.
        horizon = now - self._access_ttl
        entries = await self._run(self._revoked_since, max(since, horizon) if since else horizon)
        return Revocations(entries, now)

    # --- blocking parts (database thread pool) ----------------------------------------------------------

    def _superuser(self, uow: UnitOfWork, caller_id: str) -> User:
        caller = require_active(uow.users.get(caller_id))
        if not caller.is_superuser:
            raise PermissionDenied("only a superuser may administer users")
        return caller

    def _search(
        self, caller_id: str, query: str, cursor: tuple[datetime, str] | None, limit: int
    ) -> tuple[list[User], int]:
        with self._uow() as uow:
            self._superuser(uow, caller_id)
            return uow.users.search(query, cursor, limit)

    def _update(self, caller_id: str, user_id: str, changes: UserChanges) -> User:
        now = self._clock()
        with self._uow() as uow:
            caller = self._superuser(uow, caller_id)
            user = uow.users.get(user_id)
            if user is None:
                raise NotFound(f"user {user_id} not found")
            updated = changes.apply(caller, user, now)
            if updated is user:
                return user
            uow.users.save(updated)
            revoked = updated.tokens_revoked_at == now
            if revoked:
                uow.refresh_tokens.revoke_user(user_id, now)
            uow.commit()
        if revoked:
            self._on_revoked(user_id, now)
        log.info("superuser %s updated user %s (%s)", caller_id, user_id, ", ".join(changes.selected()))
        return updated

    def _revoked_since(self, since: datetime) -> list[tuple[str, datetime]]:
        with self._uow() as uow:
            return uow.users.revoked_since(since)
