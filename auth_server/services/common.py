"""What the account and session use cases share: the default clock and the rules for a stored user."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from auth_server.domain.ports import BlockingRunner, UnitOfWork
from auth_server.domain.users import User
from mediadl_common.errors import AlreadyExists, PermissionDenied, Unauthenticated

USER_INACTIVE = "USER_INACTIVE"
T = TypeVar("T")
# Called from a database thread after a commit that revoked a user's access tokens (user id, moment).
OnRevoked = Callable[[str, datetime], None]


def ignore_revocation(user_id: str, when: datetime) -> None:
    """The default OnRevoked: nothing in memory to update (revocations are in the database either way)."""


class UnlanedHashing:
    """A HashRunner over a plain BlockingRunner, for wiring without a HashingPool (unit tests): no lanes."""

    def __init__(self, runner: BlockingRunner) -> None:
        self._runner = runner

    async def run_for(self, client: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await self._runner.run(fn, *args, **kwargs)


def utc_now() -> datetime:
    return datetime.now(UTC)


def require_active(user: User | None) -> User:
    if user is None:
        # The token is genuine but its account is gone: the credentials no longer name anyone.
        raise Unauthenticated("the account of this token no longer exists")
    if not user.is_active:
        raise PermissionDenied("this account is inactive", reason=USER_INACTIVE)
    return user


def refuse_taken(uow: UnitOfWork, email: str, username: str) -> None:
    if uow.users.get_by_email(email) is not None:
        raise AlreadyExists("a user with this email already exists", reason="EMAIL_TAKEN")
    if uow.users.get_by_username(username) is not None:
        raise AlreadyExists("a user with this username already exists", reason="USERNAME_TAKEN")
