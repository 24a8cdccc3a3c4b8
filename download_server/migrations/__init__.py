"""Alembic migrations of the download server database (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

SCRIPT_LOCATION = Path(__file__).resolve().parent
