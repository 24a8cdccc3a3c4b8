"""SQLAlchemy tables of the download server (tasks, segments, failures, videos); the schema Alembic migrates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mediadl_common.sql_types import UtcDateTime, new_metadata

ID = String(36)
USER_ID = String(64)


class Base(DeclarativeBase):
    # Its own MetaData: the download database has its own Alembic history, apart from the auth server's.
    metadata = new_metadata()


class TaskRow(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(USER_ID)
    video_id: Mapped[str] = mapped_column(ID)
    liveroom_id: Mapped[str] = mapped_column(String(20))
    liveroom_title: Mapped[str] = mapped_column(String(255))
    liveroom_url: Mapped[str] = mapped_column(String(2048))
    resource_url: Mapped[str] = mapped_column(String(2048))
    resource_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    progress: Mapped[float] = mapped_column(Float)
    bytes_downloaded: Mapped[int] = mapped_column(BigInteger)
    bytes_total: Mapped[int] = mapped_column(BigInteger)
    segments_total: Mapped[int] = mapped_column(Integer)
    segments_done: Mapped[int] = mapped_column(Integer)
    segments_failed: Mapped[int] = mapped_column(Integer)
    retry_count: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime)
    complete_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # When a started task began waiting for a slot (NULL unless queued): recover() queues these again in order.
    queued_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Migration 0004: unexpected-exception runs in a row (quarantine) and claims since a run ended (back-off).
    crash_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reclaims: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Several replicas on one database (migration 0003). The replica that holds (or last held) the task's
    # lease, the token of that claim and until when it holds; NULL token: nobody runs it now.
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    lease_expires: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # What another replica asked the lease holder to do (pause, cancel, delete), until the run has done it.
    command: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # A retry's segment indexes (comma-separated), kept until its run ends so a claim after a crash fetches
    # the same parts; NULL: a normal run.
    run_targets: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Live recordings and one playable file (migration 0005): what to leave besides the segments, how
    # much live media to record, and whether the source showed no end (a live recording may swap its URL).
    output_format: Mapped[str] = mapped_column(String(8), server_default="HLS")
    max_duration_seconds: Mapped[int] = mapped_column(Integer, server_default="0")
    live: Mapped[bool] = mapped_column(Boolean, server_default=false())

    __table_args__ = (
        # The list queries: a user's tasks by creation or update time, with the id as tie-breaker.
        Index("ix_tasks_user_create", "user_id", "create_time", "id"),
        Index("ix_tasks_user_update", "user_id", "update_time", "id"),
        # Claims look for runnable tasks across users: by status, the queued ones in queued_time order.
        Index("ix_tasks_status_queued", "status", "queued_time"),
    )


class SegmentRow(Base):
    __tablename__ = "segments"

    task_id: Mapped[str] = mapped_column(ID, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    segment_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Segment, key and init URIs come from playlists, not from users: no length cap of ours applies.
    uri: Mapped[str] = mapped_column(Text)
    duration: Mapped[float] = mapped_column(Float)
    byterange_offset: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    byterange_length: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    key_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    key_iv: Mapped[str | None] = mapped_column(String(64), nullable=True)
    init_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    discontinuity: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    bytes: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))


class FailureRow(Base):
    __tablename__ = "failures"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(ID, ForeignKey("tasks.id", ondelete="CASCADE"))
    # Copied from the task so that listing a user's failures needs no join.
    user_id: Mapped[str] = mapped_column(USER_ID)
    segment_index: Mapped[int] = mapped_column(Integer)
    segment_url: Mapped[str] = mapped_column(Text)
    error_type: Mapped[str] = mapped_column(String(64))
    error_message: Mapped[str] = mapped_column(Text)
    http_status: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_failures_task_create", "task_id", "create_time", "id"),
        Index("ix_failures_user_create", "user_id", "create_time", "id"),
    )


class VideoRow(Base):
    __tablename__ = "videos"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(ID, ForeignKey("tasks.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[str] = mapped_column(USER_ID)
    video_id: Mapped[str] = mapped_column(ID)
    file_path: Mapped[str] = mapped_column(Text)
    file_size: Mapped[int] = mapped_column(BigInteger)
    duration_seconds: Mapped[float] = mapped_column(Float)
    format: Mapped[str] = mapped_column(String(8))
    segment_count: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    thumbnail_path: Mapped[str] = mapped_column(Text, server_default="")

    __table_args__ = (Index("ix_videos_user_video", "user_id", "video_id"),)
