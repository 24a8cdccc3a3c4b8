"""Alembic revisions of the auth database, oldest first."""
