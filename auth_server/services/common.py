"""What the account and session use cases share: the default clock and the rules for a stored user."""

from __future__ import annotations

from datetime import UTC, datetime

from auth_server.domain.ports import UnitOfWork
from auth_server.domain.users import User
from mediadl_common.errors import AlreadyExists, PermissionDenied, Unauthenticated

USER_INACTIVE = "USER_INACTIVE"


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
