"""Database engine, sessions, the bounded thread pool that keeps SQL off the event loop, and migrations."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mediadl_common import spans
from mediadl_common.errors import Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout, and its directory is created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=pool_size)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=0, pool_pre_ping=True, pool_recycle=1800)


def describe_url(url: str) -> str:
    """The database kind and host for logs: never the password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite {parsed.database}"
    return f"{parsed.get_backend_name()} {parsed.host}:{parsed.port or ''}/{parsed.database}"


class Database:
    """An engine plus the one bounded pool through which async code runs blocking SQL."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.sqlite = self.engine.dialect.name == "sqlite"
        self._wal: bool | None = None  # learnt on the first read()
        self.session_factory: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        # Sized like the connection pool: a thread never waits on a connection another thread holds.
        self._executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="db")

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run blocking `fn` in the database pool, keeping the caller's context variables."""
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        if spans.enabled():  # one span per trip to the database, under the call's span
            fn = spans.traced(fn, _work_name(fn, args), {"db.system": self.engine.dialect.name})
        return await loop.run_in_executor(self._executor, functools.partial(ctx.run, fn, *args, **kwargs))

    async def read(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a short read: on SQLite in WAL mode on the event loop itself, elsewhere in the pool like run().

        A one-row read by key from SQLite in WAL mode takes tens of microseconds in C and never waits on a
        writer (readers see the last commit), while the trip to a pool thread and back (two wake-ups and two
        GIL hand-offs) costs several times that: measured under h2load, GetTask used about 1.2 ms of server CPU
        per call through the pool and 1.0 ms inline (docs/benchmarks.md). PostgreSQL is a network round trip,
        so it keeps its thread. Only for reads of a few rows by an indexed key."""
        if self.sqlite and self._wal is None:
            self._wal = await self.run(self._journal_is_wal)
        if self.sqlite and self._wal:
            if spans.enabled():
                fn = spans.traced(fn, _work_name(fn, args), {"db.system": "sqlite"})
            return fn(*args, **kwargs)
        return await self.run(fn, *args, **kwargs)

    def _journal_is_wal(self) -> bool:
        """Only in WAL mode (make_engine asks for it; a file system without shared memory may refuse, and an
        in-memory database has none) does a reader never wait on a writer's lock, up to the busy timeout."""
        with self.engine.connect() as connection:
            return str(connection.exec_driver_sql("PRAGMA journal_mode").scalar()).lower() == "wal"

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()


def _work_name(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    # A unit of work passes its work function as the first argument: that names what the trip was for.
    work = args[0] if args and callable(args[0]) else fn
    return f"db {getattr(work, '__qualname__', type(work).__name__)}"


def database_unavailable(exc: BaseException) -> Unavailable | None:
    """What a lost database connection means to a caller (an ErrorTranslator for the error boundary).

    The database is down or restarting: the client may retry, so this is UNAVAILABLE, not INTERNAL.
    """
    if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return Unavailable("database unavailable, try again", reason=DATABASE_UNAVAILABLE)
    return None


def run_migrations(url: str, script_location: str | Path) -> None:
    """Apply every Alembic migration up to head."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    # ConfigParser interpolates '%': escape it so passwords with '%' survive.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")
    log.info("migrations applied to %s", describe_url(url))
