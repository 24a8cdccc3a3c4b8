"""Shared fixtures: real databases (SQLite and PostgreSQL, each test its own) and the media fixtures path."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.s3 import S3Server, StorageBackend, moto_server

ROOT = Path(__file__).resolve().parent.parent
MEDIA_FIXTURES = Path(os.environ.get("MEDIADL_MEDIA_FIXTURES", ROOT.parent / "shared" / "fixtures" / "media"))
# The machine's PostgreSQL; override with MEDIADL_TEST_POSTGRES_URL (an admin URL to a database that exists).
POSTGRES_ADMIN_URL = os.environ.get("MEDIADL_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Under CI=true every skip that tests/support/no_skips.py does not allow is a failure.
pytest_plugins = ["tests.support.no_skips"]

_postgres_error: str | None = None
_postgres_checked = False


def _postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None. Checked once per run."""
    global _postgres_checked, _postgres_error
    if not _postgres_checked:
        _postgres_checked = True
        try:
            engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
        except Exception as exc:  # any failure to connect means "not available"
            where = make_url(POSTGRES_ADMIN_URL).render_as_string(hide_password=True)
            _postgres_error = f"PostgreSQL at {where} unavailable: {type(exc).__name__}"
    return _postgres_error


def require_postgres() -> None:
    reason = _postgres_unavailable()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{reason} (under CI=true PostgreSQL tests never skip)")
    pytest.skip(reason)


def create_postgres_database() -> str:
    """Create a fresh database and return its URL."""
    require_postgres()
    name = f"mediadl_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def make_database_url(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Factory: make_database_url("sqlite" | "postgresql") -> URL of a new empty database, dropped afterwards."""
    created: list[str] = []
    counter = iter(range(1_000_000))

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'db{next(counter)}.sqlite'}"
        if kind == "postgresql":
            url = create_postgres_database()
            created.append(url)
            return url
        raise ValueError(kind)

    yield make
    for url in created:
        drop_postgres_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    """Parametrises a test over both databases."""
    return str(request.param)


@pytest.fixture
def database_url(db_kind: str, make_database_url: Callable[[str], str]) -> str:
    """A new empty database of each kind in turn (the test runs once per kind)."""
    return make_database_url(db_kind)


@pytest.fixture(scope="session")
def media_fixtures() -> Path:
    if not (MEDIA_FIXTURES / "manifest.json").is_file():
        pytest.fail(f"media fixtures not found at {MEDIA_FIXTURES} (set MEDIADL_MEDIA_FIXTURES)")
    return MEDIA_FIXTURES


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server (tests/support/s3.py), started once per run on a free port; every test takes its own
    prefix in its bucket."""
    with moto_server() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def storage_backend(request: pytest.FixtureRequest) -> StorageBackend:
    """Parametrises a test over both media stores: the storage directory itself, and an S3 bucket prefix."""
    if request.param == "local":
        return StorageBackend("local")
    server: S3Server = request.getfixturevalue("s3_server")
    return StorageBackend("s3", server, server.location())
