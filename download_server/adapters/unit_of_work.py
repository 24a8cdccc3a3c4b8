"""SqlUnitOfWork: one session and its repositories; SqlTransactions runs a use case's work in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from download_server.adapters.repositories.failures import SqlFailureRepository
from download_server.adapters.repositories.leases import SqlLeaseRepository
from download_server.adapters.repositories.segments import SqlSegmentRepository
from download_server.adapters.repositories.tasks import SqlTaskRepository
from download_server.adapters.repositories.videos import SqlVideoRepository
from download_server.adapters.task_reads import read_task
from download_server.domain.models import Task, utcnow
from download_server.domain.repositories import UnitOfWork
from mediadl_common.db import Database

T = TypeVar("T")


class SqlUnitOfWork:
    """Implements domain.repositories.UnitOfWork, plus the lease rows that only the SQL lease store uses."""

    def __init__(self, session: Session, *, postgres: bool) -> None:
        self.session = session
        self.tasks = SqlTaskRepository(session)
        self.segments = SqlSegmentRepository(session)
        self.failures = SqlFailureRepository(session)
        self.videos = SqlVideoRepository(session)
        self.leases = SqlLeaseRepository(session)
        self._postgres = postgres

    def now(self) -> datetime:
        """The database's clock on PostgreSQL: replicas on several hosts compare leases against one clock."""
        if self._postgres:
            value = self.session.scalar(select(func.now()))
            assert isinstance(value, datetime)
            return value
        return utcnow()


class SqlTransactions:
    """Implements domain.repositories.Transactions: each `run` is one transaction in the database thread pool."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.postgres = db.engine.dialect.name == "postgresql"

    async def run(self, work: Callable[[UnitOfWork], T]) -> T:
        return await self._db.run(self._transaction, work)

    async def run_sql(self, work: Callable[[SqlUnitOfWork], T]) -> T:
        """The same, for the SQL adapters that need the lease rows or the session itself."""
        return await self._db.run(self._transaction, work)

    async def read_task(self, task_id: str, user_id: str | None = None) -> Task:
        """One task by id (and owner), read outside any unit of work (adapters.task_reads)."""
        return await self._db.read(read_task, self._db.engine, task_id, user_id)

    def _transaction(self, work: Callable[[SqlUnitOfWork], T]) -> T:
        with self._db.session_factory.begin() as session:
            return work(SqlUnitOfWork(session, postgres=self.postgres))
