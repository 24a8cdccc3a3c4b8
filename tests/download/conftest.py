"""Fixtures of the download-server tests: a migrated database of each kind and the SQL store over it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from download_server.adapters.store import SqlTaskStore
from download_server.migrations import SCRIPT_LOCATION
from mediadl_common.db import Database, run_migrations


@pytest.fixture
def download_db(database_url: str) -> Iterator[Database]:
    """A fresh download database (SQLite, then PostgreSQL), migrated to head."""
    run_migrations(database_url, SCRIPT_LOCATION)
    db = Database(database_url, pool_size=4)
    yield db
    db.close()


@pytest.fixture
def store(download_db: Database) -> SqlTaskStore:
    return SqlTaskStore(download_db)
