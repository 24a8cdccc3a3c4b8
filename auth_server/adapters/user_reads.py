"""SqlUserReads: the hot read of one user (GetMe), outside any unit of work; see repository.read_user."""

from __future__ import annotations

from auth_server.adapters.repository import read_user
from auth_server.domain.users import User
from mediadl_common.db import Database


class SqlUserReads:
    """Implements domain.ports.UserReads; Database.read says where the read runs (SQLite: on the loop)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, user_id: str) -> User | None:
        return await self._db.read(read_user, self._db.engine, user_id)
