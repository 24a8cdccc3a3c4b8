"""Alembic environment of the download server: migrates the URL run_migrations() sets, online only."""

from __future__ import annotations

from alembic import context

from download_server.adapters.orm import Base
from mediadl_common.db import make_engine

# A table name of our own: both servers may share one PostgreSQL database without clobbering each other's
# migration state.
VERSION_TABLE = "download_alembic_version"


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set: run migrations through mediadl_common.db.run_migrations")
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                version_table=VERSION_TABLE,
                # SQLite alters tables by copying them; batch mode lets later migrations do that.
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run against a database")
run_migrations_online()
