"""The shared SQL types on SQLite and PostgreSQL: aware UTC out, naive in refused, stored form unchanged, names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Engine,
    Integer,
    MetaData,
    Table,
    TypeDecorator,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import InvalidRequestError, StatementError
from sqlalchemy.schema import CreateTable

from auth_server.adapters import orm as auth_orm
from auth_server.migrations import SCRIPT_LOCATION as AUTH_SCRIPTS
from auth_server.migrations import VERSION_TABLE as AUTH_VERSION_TABLE
from download_server.adapters import orm as download_orm
from download_server.migrations import SCRIPT_LOCATION as DOWNLOAD_SCRIPTS
from mediadl_common.db import make_engine, run_migrations
from mediadl_common.sql_types import NAMING_CONVENTION, UtcDateTime, new_metadata

DOWNLOAD_VERSION_TABLE = "download_alembic_version"  # importing download_server.migrations.env would run it
INSTANT = datetime(2026, 5, 1, 12, 0, 0, 5, tzinfo=UTC)
# The same instant spelled in other zones: all must be stored as the one UTC value.
SPELLINGS = [
    INSTANT,
    INSTANT.astimezone(timezone(timedelta(hours=2))),
    INSTANT.astimezone(timezone(-timedelta(hours=5, minutes=30))),
]


class OldAuthUtcDateTime(TypeDecorator[datetime]):
    """auth_server/adapters/orm.py's UtcDateTime before the merge (bind side), kept to write rows the old way."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass an aware UTC datetime")
        return value.astimezone(UTC)


class OldDownloadUtcDateTime(TypeDecorator[datetime]):
    """download_server/adapters/orm.py's UtcDateTime before the merge (bind side), to write rows the old way."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("UtcDateTime needs a timezone-aware datetime")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=1)
    yield engine
    engine.dispose()


def times_table(metadata: MetaData, type_: Any) -> Table:
    return Table("times", metadata, Column("id", Integer, primary_key=True), Column("at", type_, nullable=True))


def stored_text(engine: Engine) -> dict[int, str | None]:
    """What the database holds, as text in UTC, bypassing every type decorator."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET TIME ZONE 'UTC'"))
        rows = conn.execute(text("SELECT id, CAST(at AS TEXT) FROM times ORDER BY id")).all()
    return {int(row[0]): row[1] for row in rows}


def test_any_aware_spelling_is_stored_as_utc_and_read_back_aware_utc(engine: Engine) -> None:
    table = times_table(new_metadata(), UtcDateTime)
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "at": at} for i, at in enumerate([*SPELLINGS, None])])
        read = conn.execute(select(table.c.at).order_by(table.c.id)).scalars().all()
        # SQL compares the stored values (keyset pagination, lease expiry): equal instants compare equal.
        same = conn.execute(select(table.c.id).where(table.c.at == INSTANT).order_by(table.c.id)).scalars().all()

    assert read == [*SPELLINGS, None]
    assert all(at is not None and at.tzinfo is UTC for at in read[:-1])
    assert same == [0, 1, 2]
    held = stored_text(engine)
    expected = "2026-05-01 12:00:00.000005" + ("+00" if engine.dialect.name == "postgresql" else "")
    assert held == {0: expected, 1: expected, 2: expected, 3: None}


@pytest.mark.parametrize("bad", [datetime(2026, 5, 1, 12, 0), "2026-05-01 12:00:00", 0], ids=["naive", "str", "int"])
def test_naive_or_non_datetime_input_is_refused(engine: Engine, bad: object) -> None:
    table = times_table(new_metadata(), UtcDateTime)
    table.metadata.create_all(engine)
    with engine.begin() as conn, pytest.raises(StatementError, match="timezone-aware") as raised:
        conn.execute(table.insert(), {"id": 1, "at": bad})
    assert isinstance(raised.value.orig, ValueError)
    assert stored_text(engine) == {}


@pytest.mark.parametrize("old_type", [OldAuthUtcDateTime, OldDownloadUtcDateTime], ids=["auth", "download"])
def test_rows_written_by_either_old_type_are_stored_alike_and_read_back_aware(
    engine: Engine, old_type: type[TypeDecorator[datetime]]
) -> None:
    old = times_table(MetaData(), old_type)
    old.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(old.insert(), [{"id": i, "at": at} for i, at in enumerate(SPELLINGS)])
    old_form = stored_text(engine)

    new = times_table(new_metadata(), UtcDateTime)
    with engine.begin() as conn:
        read = conn.execute(select(new.c.at).order_by(new.c.id)).scalars().all()
        conn.execute(new.delete())
        conn.execute(new.insert(), [{"id": i, "at": at} for i, at in enumerate(SPELLINGS)])

    assert read == SPELLINGS and all(at is not None and at.tzinfo is UTC for at in read)
    # The stored form did not change, so databases written before the merge need no migration.
    assert stored_text(engine) == old_form


def test_each_server_has_its_own_metadata_with_the_one_convention() -> None:
    auth, download = auth_orm.Base.metadata, download_orm.Base.metadata
    assert auth is not download and auth_orm.Base.registry is not download_orm.Base.registry
    assert set(auth.tables) == {"users", "refresh_tokens"}
    assert set(download.tables) == {"tasks", "segments", "failures", "videos"}
    for metadata in (auth, download):
        assert dict(metadata.naming_convention) == NAMING_CONVENTION


SERVERS = {
    "auth": (AUTH_SCRIPTS, AUTH_VERSION_TABLE, auth_orm.Base.metadata),
    "download": (DOWNLOAD_SCRIPTS, DOWNLOAD_VERSION_TABLE, download_orm.Base.metadata),
}


def names_in_metadata(metadata: MetaData) -> dict[str, dict[str, set[str]]]:
    named: dict[str, dict[str, set[str]]] = {}
    for table in metadata.tables.values():
        kinds: dict[str, set[str]] = {"pk": set(), "fk": set(), "uq": set(), "ix": set()}
        for constraint in table.constraints:
            kind = type(constraint).__name__
            key = {"PrimaryKeyConstraint": "pk", "ForeignKeyConstraint": "fk", "UniqueConstraint": "uq"}.get(kind)
            if key is None:
                raise AssertionError(f"{table.name}: no reflection check for {kind} yet, add one here")
            kinds[key].add(str(constraint.name))
        kinds["ix"] = {str(index.name) for index in table.indexes}
        named[table.name] = kinds
    return named


def names_in_database(engine: Engine, version_table: str) -> dict[str, dict[str, set[str]]]:
    inspector = inspect(engine)
    named: dict[str, dict[str, set[str]]] = {}
    for table in set(inspector.get_table_names()) - {version_table}:
        unique = {str(u["name"]) for u in inspector.get_unique_constraints(table)}
        named[table] = {
            "pk": {str(inspector.get_pk_constraint(table)["name"])},
            "fk": {str(f["name"]) for f in inspector.get_foreign_keys(table)},
            "uq": unique,
            # PostgreSQL also lists the index behind each unique constraint.
            "ix": ({str(i["name"]) for i in inspector.get_indexes(table)} | _expression_indexes(engine, table))
            - unique,
        }
    return named


def _expression_indexes(engine: Engine, table: str) -> set[str]:
    """SQLite's inspector skips indexes on expressions (lower(email)); its catalogue still names them."""
    if engine.dialect.name != "sqlite":
        return set()
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"),
            {"t": table},
        )
        return {str(name) for (name,) in rows}


@pytest.mark.parametrize("server", SERVERS)
def test_head_schema_matches_the_metadata_including_every_constraint_name(database_url: str, server: str) -> None:
    scripts, version_table, metadata = SERVERS[server]
    run_migrations(database_url, scripts)
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": version_table, "compare_type": True})
            assert compare_metadata(context, metadata) == []
        # compare_metadata ignores primary and foreign key names: check the names the convention gives too.
        assert names_in_database(engine, version_table) == names_in_metadata(metadata)
    finally:
        engine.dispose()


def test_a_check_constraint_needs_a_name_rather_than_getting_a_guessed_one() -> None:
    with pytest.raises(InvalidRequestError, match="constraint_name"):
        unnamed = Table("t", new_metadata(), Column("n", Integer), CheckConstraint("n > 0"))
        CreateTable(unnamed).compile(dialect=sqlite.dialect())
    named = Table("u", new_metadata(), Column("n", Integer), CheckConstraint("n > 0", name="positive"))
    assert {c.name for c in named.constraints if isinstance(c, CheckConstraint)} == {"ck_u_positive"}
