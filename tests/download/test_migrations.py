"""Download-server migrations on SQLite and PostgreSQL: head is exactly the models' schema, and 0002
(tasks.queued_time) goes down and up again over existing rows."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.command import downgrade
from alembic.config import Config
from alembic.migration import MigrationContext

from download_server.adapters.orm import Base
from download_server.migrations import SCRIPT_LOCATION
from mediadl_common.db import Database, run_migrations
from tests.download.helpers import at, make_task, sql_store

VERSION_TABLE = "download_alembic_version"  # importing migrations.env would run it


def test_migrations_create_exactly_the_models_schema(download_db: Database) -> None:
    with download_db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


async def test_queued_time_migrates_down_and_up_over_existing_tasks(download_db: Database, database_url: str) -> None:
    store = sql_store(download_db)
    task = make_task("user-1", queued_time=at(3))
    await store.save_task(task)
    assert (await store.get_task(task.id)).queued_time == at(3)

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    download_db.engine.dispose()
    downgrade(cfg, "0001")
    run_migrations(database_url, SCRIPT_LOCATION)
    download_db.engine.dispose()

    kept = await store.get_task(task.id)
    assert (kept.liveroom_title, kept.queued_time) == (task.liveroom_title, None)


async def test_crash_counts_migrate_down_and_up_over_existing_tasks(download_db: Database, database_url: str) -> None:
    """Migration 0004 (issue 15): existing tasks get 0 crashes and 0 re-claims; down and up again keeps them."""
    store = sql_store(download_db)
    task = make_task("user-1", crash_count=2, reclaims=3)
    await store.save_task(task)
    assert ((got := await store.get_task(task.id)).crash_count, got.reclaims) == (2, 3)

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    download_db.engine.dispose()
    downgrade(cfg, "0003")
    run_migrations(database_url, SCRIPT_LOCATION)
    download_db.engine.dispose()

    kept = await store.get_task(task.id)
    assert (kept.liveroom_title, kept.crash_count, kept.reclaims) == (task.liveroom_title, 0, 0)
