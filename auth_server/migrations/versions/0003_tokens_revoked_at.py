"""Per-user revocation moment of access tokens, read by ListRevocations.

Revision ID: auth_0003
Revises: auth_0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "auth_0003"
down_revision = "auth_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE on both databases (SQLite >= 3.35 drops columns too): batch mode would copy the table
    # and lose the expression indexes of auth_0002, which SQLite cannot reflect.
    op.add_column("users", sa.Column("tokens_revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_users_tokens_revoked_at", "users", ["tokens_revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_users_tokens_revoked_at", table_name="users")
    op.drop_column("users", "tokens_revoked_at")
