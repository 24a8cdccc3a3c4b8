"""SQLAlchemy column types and the constraint naming convention shared by the auth and download databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import DateTime, Dialect, MetaData, TypeDecorator

# Explicit, stable constraint names: Alembic refers to constraints by name, SQLite batch mode needs them,
# and both backends must end up with identical names. Every name either server has stored so far is what
# this convention produces (tests/common/test_sql_types.py checks migrated databases against it), so
# adopting it changed no schema. "ck" needs an explicitly named CheckConstraint: an unnamed one is an error
# rather than a name that silently depends on SQLAlchemy's internals.
NAMING_CONVENTION: Final[dict[str, str]] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """A fresh MetaData with the shared naming convention.

    Each server declares its own `class Base(DeclarativeBase): metadata = new_metadata()`: the two are
    separate databases with separate Alembic histories, so they must never share a MetaData or a registry
    (a common DeclarativeBase subclass would share both).
    """
    return MetaData(naming_convention=dict(NAMING_CONVENTION))


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time stored as UTC and always read back as a timezone-aware UTC datetime.

    PostgreSQL stores it as timestamptz. SQLite keeps no offset, so the value is stored as naive UTC text
    ("YYYY-MM-DD HH:MM:SS.ffffff") and the zone is added back on the way out. Keyset pagination and lease
    expiry compare these values in SQL, so every stored value must be UTC: naive input is refused instead
    of being guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"UtcDateTime needs a timezone-aware datetime, got {value!r}")
        utc = value.astimezone(UTC)
        # SQLite's DATETIME would drop the zone anyway; dropping it here keeps the stored text explicit.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UtcDateTime read a {type(value).__name__}, not a datetime: {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
