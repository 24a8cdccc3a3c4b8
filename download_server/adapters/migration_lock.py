"""Migrations when several replicas start together on one PostgreSQL: one at a time, under an advisory lock."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from mediadl_common.db import make_engine, run_migrations

# Any fixed 64-bit number: every download replica takes the same one ("mediadl" in ASCII).
MIGRATION_LOCK_KEY = 0x6D6564696164_6C


def migrate_exclusively(url: str, script_location: str | Path) -> None:
    """Blocking. run_migrations(), but on PostgreSQL only after the other replicas' migrations have finished:
    the first applies them, the others then find the schema at head and do nothing."""
    engine = make_engine(url, pool_size=1)
    try:
        if engine.dialect.name != "postgresql":
            run_migrations(url, script_location)
            return
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                run_migrations(url, script_location)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
    finally:
        engine.dispose()
