"""tasks: lease columns for several replicas on one database (which replica runs a task, until when, and
what another replica asks of it), and an index for the claim query in place of the status-only one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("lease_token", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("lease_expires", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("command", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("run_targets", sa.Text(), nullable=True))
        batch.drop_index("ix_tasks_status")
        batch.create_index("ix_tasks_status_queued", ["status", "queued_time"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_status_queued")
        batch.create_index("ix_tasks_status", ["status"], unique=False)
        batch.drop_column("run_targets")
        batch.drop_column("command")
        batch.drop_column("lease_expires")
        batch.drop_column("lease_token")
        batch.drop_column("lease_owner")
