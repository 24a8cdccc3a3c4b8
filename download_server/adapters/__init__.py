"""Adapters of the download server: SQL storage (ORM, migrations target, repositories) and task files on disk."""
