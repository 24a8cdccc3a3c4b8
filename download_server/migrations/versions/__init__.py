"""Alembic revision scripts of the download server."""
