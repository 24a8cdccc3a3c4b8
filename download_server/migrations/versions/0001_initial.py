"""Initial schema: tasks, segments, failures, videos.

Times are stored as UTC (naive on SQLite; mediadl_common.sql_types.UtcDateTime adds the zone back).

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-21 23:38:08.250688
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("video_id", sa.String(length=36), nullable=False),
        sa.Column("liveroom_id", sa.String(length=20), nullable=False),
        sa.Column("liveroom_title", sa.String(length=255), nullable=False),
        sa.Column("liveroom_url", sa.String(length=2048), nullable=False),
        sa.Column("resource_url", sa.String(length=2048), nullable=False),
        sa.Column("resource_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("bytes_downloaded", sa.BigInteger(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=False),
        sa.Column("segments_total", sa.Integer(), nullable=False),
        sa.Column("segments_done", sa.Integer(), nullable=False),
        sa.Column("segments_failed", sa.Integer(), nullable=False),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("complete_time", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index("ix_tasks_status", "tasks", ["status"], unique=False)
    op.create_index("ix_tasks_user_create", "tasks", ["user_id", "create_time", "id"], unique=False)
    op.create_index("ix_tasks_user_update", "tasks", ["user_id", "update_time", "id"], unique=False)
    op.create_table(
        "failures",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("segment_index", sa.Integer(), nullable=False),
        sa.Column("segment_url", sa.Text(), nullable=False),
        sa.Column("error_type", sa.String(length=64), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_failures_task_id_tasks"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failures")),
    )
    op.create_index("ix_failures_task_create", "failures", ["task_id", "create_time", "id"], unique=False)
    op.create_index("ix_failures_user_create", "failures", ["user_id", "create_time", "id"], unique=False)
    op.create_table(
        "segments",
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("segment_index", sa.Integer(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("byterange_offset", sa.BigInteger(), nullable=True),
        sa.Column("byterange_length", sa.BigInteger(), nullable=True),
        sa.Column("key_uri", sa.Text(), nullable=True),
        sa.Column("key_iv", sa.String(length=64), nullable=True),
        sa.Column("init_uri", sa.Text(), nullable=True),
        sa.Column("discontinuity", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_segments_task_id_tasks"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id", "segment_index", name=op.f("pk_segments")),
    )
    op.create_table(
        "videos",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("video_id", sa.String(length=36), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("segment_count", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_videos_task_id_tasks"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_videos")),
        sa.UniqueConstraint("task_id", name=op.f("uq_videos_task_id")),
    )
    op.create_index("ix_videos_user_video", "videos", ["user_id", "video_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_videos_user_video", table_name="videos")
    op.drop_table("videos")
    op.drop_table("segments")
    op.drop_index("ix_failures_user_create", table_name="failures")
    op.drop_index("ix_failures_task_create", table_name="failures")
    op.drop_table("failures")
    op.drop_index("ix_tasks_user_update", table_name="tasks")
    op.drop_index("ix_tasks_user_create", table_name="tasks")
    op.drop_index("ix_tasks_status", table_name="tasks")
    op.drop_table("tasks")
