"""Download server settings, read once in __main__ (or a test) from the environment and validated."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mediadl_common.config import ConfigError, Env, JwtSettings, default_sqlite_url
from mediadl_common.db import describe_url

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class DownloadSettings:
    """Everything the composition root needs. The JWT secret lives in `jwt`, whose repr hides it."""

    jwt: JwtSettings
    database_url: str = default_sqlite_url("download.db")
    grpc_addr: str = "127.0.0.1:50052"
    storage_dir: Path = Path("storage")
    max_active_tasks: int = 4
    segment_concurrency: int = 8
    allow_private_networks: bool = False
    db_pool_size: int = 8
    log_level: str = "INFO"
    log_format: str = "text"
    shutdown_grace_seconds: float = 10.0

    def __repr__(self) -> str:
        # The database URL may hold a password: show only what is safe.
        return (
            f"DownloadSettings(jwt={self.jwt!r}, database={describe_url(self.database_url)!r}, "
            f"grpc_addr={self.grpc_addr!r}, storage_dir={str(self.storage_dir)!r}, "
            f"max_active_tasks={self.max_active_tasks}, segment_concurrency={self.segment_concurrency}, "
            f"allow_private_networks={self.allow_private_networks}, db_pool_size={self.db_pool_size}, "
            f"log_level={self.log_level!r}, log_format={self.log_format!r}, "
            f"shutdown_grace_seconds={self.shutdown_grace_seconds})"
        )

    @classmethod
    def from_env(cls, env: Env) -> DownloadSettings:
        log_level = env.string("LOG_LEVEL", "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        log_format = env.string("LOG_FORMAT", "text").lower()
        if log_format not in LOG_FORMATS:
            raise ConfigError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
        grpc_addr = env.string("DOWNLOAD_GRPC_ADDR", "127.0.0.1:50052")
        host, sep, port = grpc_addr.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"DOWNLOAD_GRPC_ADDR must be HOST:PORT, got {grpc_addr!r}")
        return cls(
            jwt=JwtSettings.from_env(env),
            database_url=env.string("DOWNLOAD_DATABASE_URL", default_sqlite_url("download.db")),
            grpc_addr=grpc_addr,
            storage_dir=Path(env.string("STORAGE_DIR", "./storage")),
            max_active_tasks=env.integer("DOWNLOAD_MAX_ACTIVE_TASKS", 4, minimum=1, maximum=1000),
            segment_concurrency=env.integer("DOWNLOAD_SEGMENT_CONCURRENCY", 8, minimum=1, maximum=256),
            allow_private_networks=env.flag("DOWNLOAD_ALLOW_PRIVATE_NETWORKS", False),
            db_pool_size=env.integer("DOWNLOAD_DB_POOL_SIZE", 8, minimum=1, maximum=256),
            log_level=log_level,
            log_format=log_format,
            shutdown_grace_seconds=env.number("DOWNLOAD_SHUTDOWN_GRACE_SECONDS", 10.0, minimum=0.0),
        )
