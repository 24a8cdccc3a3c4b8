"""Database.read: a short read runs on the event loop's own thread on SQLite, in the pool on PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from sqlalchemy import event, text

from mediadl_common.db import Database


async def test_short_reads_stay_on_the_loop_only_on_sqlite(database_url: str, db_kind: str) -> None:
    db = Database(database_url, pool_size=2)
    try:

        def one() -> tuple[int, int]:
            with db.engine.connect() as connection:
                return int(connection.execute(text("SELECT 1")).scalar_one()), threading.get_ident()

        value, thread = await db.read(one)
        assert value == 1
        assert (thread == threading.get_ident()) is (db_kind == "sqlite")
        _, pooled = await db.run(one)
        assert pooled != threading.get_ident()  # run() always leaves the loop
    finally:
        db.close()


async def test_sqlite_without_wal_reads_in_the_pool(tmp_path: Path) -> None:
    # A file in rollback-journal mode: a reader could wait on a writer's lock, so never on the loop.
    path = tmp_path / "journal.db"
    sqlite3.connect(path).close()
    db = Database(f"sqlite:///{path}", pool_size=2)
    event.listen(db.engine, "connect", lambda dbapi, _record: dbapi.execute("PRAGMA journal_mode=DELETE"))
    try:
        thread = await db.read(threading.get_ident)
        assert thread != threading.get_ident()
    finally:
        db.close()
