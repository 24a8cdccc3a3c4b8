"""What the use cases need from the outside world: storage (unit of work), password hashing, tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, Self, TypeVar

from auth_server.domain.tokens import RefreshTokenRecord
from auth_server.domain.users import User
from mediadl_common.tokens import Claims, TokenType

T = TypeVar("T")


class BlockingRunner(Protocol):
    """Runs blocking code (SQL, bcrypt) off the event loop; mediadl_common.db.Database is one."""

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...


class HashRunner(Protocol):
    """Runs password hashing off the loop in `client`'s lane (adapters.hashing.HashingPool), or refuses with
    ResourceExhausted when that client or the whole queue is full."""

    async def run_for(self, client: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...


class UniqueViolation(Exception):
    """A write collided with a unique key (email or username) another transaction committed first."""


class UserRepository(Protocol):
    def get(self, user_id: str) -> User | None: ...
    def get_by_email(self, email: str) -> User | None: ...
    def get_by_username(self, username: str) -> User | None: ...
    def revoked_since(self, since: datetime) -> list[tuple[str, datetime]]: ...
    def search(self, query: str, after: tuple[datetime, str] | None, limit: int) -> tuple[list[User], int]:
        """Users whose email or username contains `query` (any case), by (create_time, id) after the cursor;
        and how many match in all."""
        ...

    def add(self, user: User) -> None: ...
    def save(self, user: User) -> None: ...


class UserReads(Protocol):
    """A user by id read on its own, outside any unit of work (the hot read of GetMe)."""

    async def get(self, user_id: str) -> User | None: ...


class RefreshTokenRepository(Protocol):
    def add(self, record: RefreshTokenRecord) -> None: ...

    def get_for_update(self, jti: str) -> RefreshTokenRecord | None:
        """The record, row-locked until the transaction ends where the database supports it."""
        ...

    def mark_used(self, jti: str, *, used_at: datetime, replaced_by: str) -> bool:
        """Rotate away a live token; False if it was not live any more (compare-and-set)."""
        ...

    def revoke_family(self, family_id: str, when: datetime) -> int: ...
    def revoke_user(self, user_id: str, when: datetime) -> int: ...


class UnitOfWork(Protocol):
    """One transaction: nothing is written unless commit() is called inside the `with` block."""

    @property
    def users(self) -> UserRepository: ...
    @property
    def refresh_tokens(self) -> RefreshTokenRepository: ...

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...

    def commit(self) -> None:
        """Commit, raising UniqueViolation if a unique key was taken meanwhile."""
        ...


class PasswordHasher(Protocol):
    """Blocking (bcrypt is slow on purpose): call only through the hashing pool, never on the event loop."""

    def hash(self, password: str) -> str: ...
    def verify(self, password: str, password_hash: str) -> bool: ...

    def verify_dummy(self, password: str) -> None:
        """Spend the time a real verification costs, for a login whose email is unknown."""
        ...


class TokenIssuer(Protocol):
    """Signs tokens (auth_server.adapters.tokens.JwtIssuer); only the auth server holds one."""

    def issue(
        self, *, sub: str, type: TokenType, ttl_seconds: int, family: str | None = None
    ) -> tuple[str, Claims]: ...


class TokenVerifier(Protocol):
    """Checks tokens (mediadl_common.tokens.TokenVerifier), raising Unauthenticated with the reason."""

    async def verify(self, token: str, expected: TokenType = "access") -> Claims: ...
