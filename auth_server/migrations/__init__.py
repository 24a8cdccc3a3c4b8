"""Alembic migrations of the auth database (the only way its schema changes)."""

from __future__ import annotations

from pathlib import Path

SCRIPT_LOCATION = Path(__file__).resolve().parent
# Our own version table: the auth and download schemas may share one PostgreSQL database.
VERSION_TABLE = "auth_alembic_version"
