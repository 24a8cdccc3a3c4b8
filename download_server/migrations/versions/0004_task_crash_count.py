"""tasks: crash_count (runs in a row that ended in an unexpected exception: quarantine) and reclaims (claims
since a run last ended by itself: the back-off of a task re-claimed after an interrupted run).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 00:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("crash_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("reclaims", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("reclaims")
        batch.drop_column("crash_count")
