"""The SQL adapters on SQLite and PostgreSQL: migrations match the models, repositories, unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.command import downgrade
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from auth_server.adapters.orm import Base
from auth_server.adapters.unit_of_work import SqlUnitOfWork
from auth_server.adapters.user_reads import SqlUserReads
from auth_server.domain.ports import UniqueViolation
from auth_server.domain.tokens import RefreshTokenRecord
from auth_server.domain.users import User
from auth_server.migrations import SCRIPT_LOCATION, VERSION_TABLE
from mediadl_common.db import Database, run_migrations

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    run_migrations(database_url, SCRIPT_LOCATION)
    db = Database(database_url, pool_size=2)
    yield db
    db.close()


def uow(db: Database) -> SqlUnitOfWork:
    return SqlUnitOfWork(db.session_factory)


def new_user(email: str = "a@example.com", username: str = "alice") -> User:
    return User.new(email=email, username=username, password_hash="$2b$04$hash", full_name="Alice", now=T0)


def token(user: User, jti: str, family: str = "fam") -> RefreshTokenRecord:
    return RefreshTokenRecord(jti, user.id, family, expires_at=T0 + timedelta(days=7), create_time=T0)


def test_migrations_create_exactly_the_models_schema(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def schema(db: Database) -> dict[str, Any]:
    """Every table as the database reports it: columns, keys, indexes, constraints (the version table aside)."""
    db.engine.dispose()  # a fresh connection: no cached reflection from before a migration
    found = inspect(db.engine)
    tables: dict[str, Any] = {}
    for name in sorted(set(found.get_table_names()) - {VERSION_TABLE}):
        columns = [(c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in found.get_columns(name)]
        tables[name] = {
            "columns": columns,
            "primary_key": found.get_pk_constraint(name)["constrained_columns"],
            "foreign_keys": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                for fk in found.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in found.get_indexes(name)
            ),
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in found.get_unique_constraints(name)),
            "checks": sorted(str(c["sqltext"]) for c in found.get_check_constraints(name)),
        }
    return tables


def test_migrations_go_down_and_up_again(database: Database, database_url: str) -> None:
    before = schema(database)
    assert set(before) >= {"users", "refresh_tokens"}
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    downgrade(cfg, "base")
    assert schema(database) == {}  # down to base leaves no table of ours behind
    run_migrations(database_url, SCRIPT_LOCATION)

    assert schema(database) == before  # up again: the very same schema, column by column
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    with uow(database) as work:
        work.users.add(new_user())
        work.commit()


def test_users_round_trip_with_aware_utc_times(database: Database) -> None:
    alice = new_user()
    with uow(database) as work:
        work.users.add(alice)
        work.commit()

    with uow(database) as work:
        loaded = work.users.get(alice.id)
        assert loaded == alice and loaded.create_time.tzinfo is not None
        assert work.users.get_by_email("a@example.com") == alice
        assert work.users.get_by_username("alice") == alice
        work.users.save(replace(alice, bio="changed", update_time=T0 + timedelta(hours=1)))
        work.commit()

    with uow(database) as work:
        assert work.users.get(alice.id) == replace(alice, bio="changed", update_time=T0 + timedelta(hours=1))


def test_nothing_is_written_without_commit(database: Database) -> None:
    alice = new_user()
    with uow(database) as work:
        work.users.add(alice)

    with uow(database) as work:
        assert work.users.get(alice.id) is None


@pytest.mark.parametrize("clash", ["email", "username"])
def test_a_unique_key_clash_is_a_unique_violation(database: Database, clash: str) -> None:
    with uow(database) as work:
        work.users.add(new_user())
        work.commit()
    other = new_user(
        email="a@example.com" if clash == "email" else "b@example.com",
        username="alice" if clash == "username" else "bob",
    )

    with uow(database) as work, pytest.raises(UniqueViolation):
        work.users.add(other)
        work.commit()


def test_mark_used_is_a_compare_and_set(database: Database) -> None:
    alice = new_user()
    with uow(database) as work:
        work.users.add(alice)
        work.commit()
    with uow(database) as work:
        work.refresh_tokens.add(token(alice, "t1"))
        work.commit()

    with uow(database) as work:
        assert work.refresh_tokens.mark_used("t1", used_at=T0, replaced_by="t2") is True
        assert work.refresh_tokens.mark_used("t1", used_at=T0, replaced_by="t3") is False
        work.commit()

    with uow(database) as work:
        record = work.refresh_tokens.get_for_update("t1")
        assert record is not None and not record.is_live
        assert (record.used_at, record.replaced_by) == (T0, "t2")


def test_revocation_by_family_and_by_user(database: Database) -> None:
    alice, bob = new_user(), new_user("b@example.com", "bob")
    with uow(database) as work:
        work.users.add(alice)
        work.users.add(bob)
        work.commit()
    with uow(database) as work:
        for record in (token(alice, "a1", "f1"), token(alice, "a2", "f1"), token(alice, "a3", "f2")):
            work.refresh_tokens.add(record)
        work.refresh_tokens.add(token(bob, "b1", "f3"))
        work.commit()

    with uow(database) as work:
        assert work.refresh_tokens.revoke_family("f1", T0) == 2
        assert work.refresh_tokens.revoke_family("f1", T0) == 0  # already revoked rows are left alone
        assert work.refresh_tokens.revoke_user(alice.id, T0) == 1
        work.commit()

    with uow(database) as work:
        live = {jti: work.refresh_tokens.get_for_update(jti) for jti in ("a1", "a2", "a3", "b1")}
    assert {jti for jti, r in live.items() if r is not None and r.is_live} == {"b1"}


async def test_hot_user_read_gives_what_the_repository_gives(database: Database) -> None:
    alice = replace(new_user(), tokens_revoked_at=T0 + timedelta(minutes=5))
    with uow(database) as work:
        work.users.add(alice)
        work.commit()
    reads = SqlUserReads(database)

    got = await reads.get(alice.id)
    with uow(database) as work:
        assert got == work.users.get(alice.id) == alice
    assert got is not None and got.create_time.tzinfo is not None
    assert await reads.get(str(uuid.uuid4())) is None
    assert await reads.get("not-a-uuid") is None  # a genuine token with a foreign subject: no query at all
    with uow(database) as work:
        work.users.save(replace(alice, is_active=False))
        work.commit()
    assert (await reads.get(alice.id)) == replace(alice, is_active=False)  # no copy kept: every read is fresh
