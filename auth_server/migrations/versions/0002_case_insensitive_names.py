"""Case-insensitive unique email and username: refuses to run while existing rows clash, naming them.

Revision ID: auth_0002
Revises: auth_0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "auth_0002"
down_revision = "auth_0001"
branch_labels = None
depends_on = None


class NameClash(RuntimeError):
    """Existing users whose email or username differ only in case: an operator must settle them first."""


def clashes(connection: sa.Connection) -> list[str]:
    """One line per group of rows that one case-insensitive name would merge (empty: none)."""
    lines = []
    for column in ("email", "username"):
        # Column names are our two literals, never input.
        rows = connection.execute(
            sa.text(
                f"SELECT lower({column}) AS k, {column} FROM users WHERE lower({column}) IN "
                f"(SELECT lower({column}) FROM users GROUP BY lower({column}) HAVING count(*) > 1) ORDER BY k, {column}"
            )
        ).all()
        groups: dict[str, list[str]] = {}
        for key, value in rows:
            groups.setdefault(key, []).append(value)
        lines += [f"{column} {' / '.join(map(repr, values))}" for values in groups.values()]
    return lines


def upgrade() -> None:
    found = clashes(op.get_bind())
    if found:
        raise NameClash(
            "cannot make email and username unique case-insensitively: these users clash "
            f"(rename or remove all but one of each, then migrate again): {'; '.join(found)}"
        )
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_email", type_="unique")
        batch.drop_constraint("uq_users_username", type_="unique")
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_username_lower", table_name="users")
    op.drop_index("uq_users_email_lower", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.create_unique_constraint("uq_users_email", ["email"])
        batch.create_unique_constraint("uq_users_username", ["username"])
