"""The SQL unit of work: one session, one transaction, repositories sharing it; rollback unless committed."""

from __future__ import annotations

from typing import Self

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from auth_server.adapters.repository import SqlRefreshTokenRepository, SqlUserRepository
from auth_server.domain.ports import UniqueViolation


class SqlUnitOfWork:
    """Blocking: use it inside `Database.run` so the event loop never waits on SQL."""

    users: SqlUserRepository
    refresh_tokens: SqlRefreshTokenRepository

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def __enter__(self) -> Self:
        self._session = self._session_factory()
        self.users = SqlUserRepository(self._session)
        self.refresh_tokens = SqlRefreshTokenRepository(self._session)
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Anything not committed is thrown away; closing returns the connection to the pool.
        self._session.rollback()
        self._session.close()

    def commit(self) -> None:
        try:
            self._session.commit()
        except IntegrityError as exc:
            self._session.rollback()
            # Only the message's first line: the rest may echo the row's values (a password hash).
            raise UniqueViolation(str(exc.orig).splitlines()[0] if exc.orig else "unique key taken") from None
