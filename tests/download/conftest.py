"""Fixtures of the download-server tests: migrated databases, the SQL store, and a running server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from download_server.adapters.store import SqlTaskStore
from download_server.adapters.unit_of_work import SqlTransactions
from download_server.migrations import SCRIPT_LOCATION
from mediadl_common.db import Database, run_migrations
from tests.download.api import DownloadApi, download_settings, running_download_server
from tests.download.helpers import sql_store


@pytest.fixture
def download_db(database_url: str) -> Iterator[Database]:
    """A fresh download database (SQLite, then PostgreSQL), migrated to head."""
    run_migrations(database_url, SCRIPT_LOCATION)
    db = Database(database_url, pool_size=4)
    yield db
    db.close()


@pytest.fixture
def tx(download_db: Database) -> SqlTransactions:
    return SqlTransactions(download_db)


@pytest.fixture
def store(download_db: Database) -> SqlTaskStore:
    return sql_store(download_db)


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[DownloadApi]:
    """The download server on a new database of each kind, with a fake resolver and its own storage dir."""
    async with running_download_server(download_settings(database_url, tmp_path / "storage")) as client:
        yield client


@pytest.fixture
async def sqlite_api(make_database_url: Callable[[str], str], tmp_path: Path) -> AsyncIterator[DownloadApi]:
    """The download server on SQLite only, for tests whose subject does not touch storage (authentication)."""
    settings = download_settings(make_database_url("sqlite"), tmp_path / "storage")
    async with running_download_server(settings) as client:
        yield client
