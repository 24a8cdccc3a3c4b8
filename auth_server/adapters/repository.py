"""SQL repositories: users and refresh-token records, mapping table rows to domain objects and back."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Engine, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from auth_server.adapters.orm import RefreshTokenRow, UserRow
from auth_server.domain.tokens import RefreshTokenRecord
from auth_server.domain.users import User, username_key

_USER_FIELDS = (
    "id",
    "email",
    "username",
    "password_hash",
    "full_name",
    "bio",
    "avatar_url",
    "is_active",
    "is_superuser",
    "create_time",
    "update_time",
    "tokens_revoked_at",
)


def _user(row: UserRow) -> User:
    return User(**{name: getattr(row, name) for name in _USER_FIELDS})


_USERS = UserRow.__table__
_USER_BY_ID = select(_USERS).where(_USERS.c.id == bindparam("user_id"))


def read_user(engine: Engine, user_id: str) -> User | None:
    """GetMe's read: the user by id with SQLAlchemy Core on a plain connection and a statement built once (no
    Session, no ORM instance): the same User as SqlUserRepository.get at a fraction of its CPU (see
    docs/benchmarks.md)."""
    if not _is_uuid(user_id):
        return None
    with engine.connect() as connection:
        row = connection.execute(_USER_BY_ID, {"user_id": user_id}).one_or_none()
    return _user(row) if row is not None else None  # type: ignore[arg-type]  # a Row has a UserRow's attributes


class SqlUserRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, user_id: str) -> User | None:
        if not _is_uuid(user_id):
            # E.g. a genuine token whose subject is not one of our ids: PostgreSQL would refuse the query.
            return None
        row = self._session.get(UserRow, user_id)
        return _user(row) if row is not None else None

    def get_by_email(self, email: str) -> User | None:
        if "\x00" in email:
            return None  # never stored (PostgreSQL text cannot hold NUL), and PostgreSQL refuses it as a parameter
        row = self._session.scalars(select(UserRow).where(func.lower(UserRow.email) == email.lower())).one_or_none()
        return _user(row) if row is not None else None

    def get_by_username(self, username: str) -> User | None:
        if "\x00" in username:
            return None
        query = select(UserRow).where(func.lower(UserRow.username) == username_key(username))
        row = self._session.scalars(query).one_or_none()
        return _user(row) if row is not None else None

    def revoked_since(self, since: datetime) -> list[tuple[str, datetime]]:
        query = select(UserRow.id, UserRow.tokens_revoked_at).where(UserRow.tokens_revoked_at >= since)
        return [(str(uuid.UUID(str(uid))), when) for uid, when in self._session.execute(query) if when is not None]

    def search(self, query: str, after: tuple[datetime, str] | None, limit: int) -> tuple[list[User], int]:
        matches = select(UserRow)
        if query:
            pattern = f"%{_escape_like(query.lower())}%"
            matches = matches.where(
                or_(
                    func.lower(UserRow.email).like(pattern, escape="\\"),
                    func.lower(UserRow.username).like(pattern, escape="\\"),
                )
            )
        total = self._session.scalar(select(func.count()).select_from(matches.subquery())) or 0
        if after is not None:
            time, ident = after
            matches = matches.where(
                or_(UserRow.create_time > time, and_(UserRow.create_time == time, UserRow.id > ident))
            )
        rows = self._session.scalars(matches.order_by(UserRow.create_time, UserRow.id).limit(limit)).all()
        return [_user(row) for row in rows], int(total)

    def add(self, user: User) -> None:
        self._session.add(UserRow(**{name: getattr(user, name) for name in _USER_FIELDS}))

    def save(self, user: User) -> None:
        row = self._session.get(UserRow, user.id)
        if row is None:
            raise LookupError(f"user {user.id} vanished")
        for name in _USER_FIELDS[1:]:
            setattr(row, name, getattr(user, name))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _record(row: RefreshTokenRow) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        jti=row.jti,
        user_id=row.user_id,
        family_id=row.family_id,
        expires_at=row.expires_at,
        create_time=row.create_time,
        used_at=row.used_at,
        replaced_by=row.replaced_by,
        revoked_at=row.revoked_at,
    )


class SqlRefreshTokenRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, record: RefreshTokenRecord) -> None:
        self._session.add(
            RefreshTokenRow(
                jti=record.jti,
                user_id=record.user_id,
                family_id=record.family_id,
                expires_at=record.expires_at,
                create_time=record.create_time,
                used_at=record.used_at,
                replaced_by=record.replaced_by,
                revoked_at=record.revoked_at,
            )
        )

    def get_for_update(self, jti: str) -> RefreshTokenRecord | None:
        # FOR UPDATE on PostgreSQL: a concurrent rotation of the same token waits for ours to commit.
        # SQLite ignores it; mark_used's compare-and-set is what serialises there.
        query = select(RefreshTokenRow).where(RefreshTokenRow.jti == jti).with_for_update()
        row = self._session.scalars(query).one_or_none()
        return _record(row) if row is not None else None

    def mark_used(self, jti: str, *, used_at: datetime, replaced_by: str) -> bool:
        result = self._session.execute(
            update(RefreshTokenRow)
            .where(RefreshTokenRow.jti == jti, RefreshTokenRow.used_at.is_(None), RefreshTokenRow.revoked_at.is_(None))
            .values(used_at=used_at, replaced_by=replaced_by)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def revoke_family(self, family_id: str, when: datetime) -> int:
        return self._revoke(RefreshTokenRow.family_id == family_id, when)

    def revoke_user(self, user_id: str, when: datetime) -> int:
        return self._revoke(RefreshTokenRow.user_id == user_id, when)

    def _revoke(self, condition: object, when: datetime) -> int:
        result = self._session.execute(
            update(RefreshTokenRow)
            .where(condition, RefreshTokenRow.revoked_at.is_(None))  # type: ignore[arg-type]
            .values(revoked_at=when)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0))
