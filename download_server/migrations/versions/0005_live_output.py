"""tasks.output_format, max_duration_seconds and live; videos.thumbnail_path: live recordings, one playable file.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 04:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("output_format", sa.String(length=8), nullable=False, server_default="HLS"))
        batch.add_column(sa.Column("max_duration_seconds", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("live", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("thumbnail_path", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("thumbnail_path")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("live")
        batch.drop_column("max_duration_seconds")
        batch.drop_column("output_format")
