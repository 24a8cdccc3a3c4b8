"""Download server settings, read once in __main__ (or a test) from the environment and validated."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mediadl_common.config import ConfigError, Env, JwtSettings, default_sqlite_url, service_token_from_env
from mediadl_common.keys import PublicKey, load_jwks_file
from mediadl_common.log import LogSettings
from mediadl_common.tls import ClientTls, ServerTls

_REPLICA_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# s3://bucket[/prefix]: S3's bucket naming rules, and a prefix of plain folder names.
_STORAGE_URL = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/[A-Za-z0-9!_.*'()-]+)*/?")


@dataclass(frozen=True)
class ObjectStorage:
    """STORAGE_URL and how to reach it (issue 22). Unset keys and region fall back to botocore's own chain
    (shared config file, instance role). The secret stays out of repr(), so out of every log line."""

    url: str
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Env) -> ObjectStorage | None:
        url = env.get("STORAGE_URL")
        if not url:
            return None
        if not _STORAGE_URL.fullmatch(url) or "/../" in f"{url}/" or "/./" in f"{url}/":
            raise ConfigError("STORAGE_URL must be s3://bucket or s3://bucket/prefix (a valid S3 bucket name)")
        endpoint = env.get("S3_ENDPOINT_URL")
        if endpoint is not None and not re.fullmatch(r"https?://[^\s/]+/?", endpoint):
            raise ConfigError("S3_ENDPOINT_URL must be http(s)://host[:port]")
        return cls(
            url=url,
            endpoint_url=endpoint,
            region=env.get("AWS_REGION"),
            access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        )


@dataclass(frozen=True)
class GuardSettings:
    """The engine guard's block (issues 19 and 15), kept apart from the other settings."""

    # The final sweep re-attempts retryable failures for at most this long before a run may end partial.
    sweep_seconds: float = 60.0
    # Running tasks one user may have (0: no cap): a strict cap, across replicas; free slots go round-robin.
    max_active_tasks_per_user: int = 2
    # Any one file, declared or streamed (DOWNLOAD_MAX_FILE_BYTES).
    max_file_bytes: int = 20 * 1024**3
    # A transfer slower than this many bytes a second over the window is aborted and retried like a timeout.
    min_rate_bytes: float = 1024.0
    min_rate_window_seconds: float = 30.0
    # Runs in a row ending in an unexpected exception before a task is quarantined (FAILED, not run again).
    quarantine_after: int = 3
    # Bytes a user's tasks may hold (0: no quota), counted in the database: starts over it are refused.
    user_quota_bytes: int = 0

    @classmethod
    def from_env(cls, env: Env) -> GuardSettings:
        return cls(
            sweep_seconds=_finite(env, "DOWNLOAD_SWEEP_SECONDS", 60.0, minimum=0.0),
            max_active_tasks_per_user=env.integer("DOWNLOAD_MAX_ACTIVE_TASKS_PER_USER", 2, minimum=0, maximum=1000),
            max_file_bytes=env.integer("DOWNLOAD_MAX_FILE_BYTES", 20 * 1024**3, minimum=1, maximum=2**62),
            min_rate_bytes=_finite(env, "DOWNLOAD_MIN_RATE_BYTES_PER_SECOND", 1024.0, minimum=0.0),
            min_rate_window_seconds=_finite(env, "DOWNLOAD_MIN_RATE_WINDOW_SECONDS", 30.0, minimum=1.0),
            quarantine_after=env.integer("DOWNLOAD_QUARANTINE_AFTER", 3, minimum=1, maximum=1000),
            user_quota_bytes=env.integer("DOWNLOAD_USER_QUOTA_BYTES", 0, minimum=0, maximum=2**62),
        )


@dataclass(frozen=True)
class DownloadSettings:
    """Everything the composition root needs. Secrets (the JWT key, a database password) stay out of repr()."""

    jwt: JwtSettings
    database_url: str = field(default=default_sqlite_url("download.db"), repr=False)
    grpc_addr: str = "127.0.0.1:50052"
    storage_dir: Path = Path("storage")
    # STORAGE_URL=s3://...: finished files go to a bucket and STORAGE_DIR is only the work area (None: local).
    object_storage: ObjectStorage | None = None
    max_active_tasks: int = 4
    segment_concurrency: int = 8
    # Connections one MP4 or image download may use at once when its origin supports ranges (1: one).
    range_connections: int = 4
    allow_private_networks: bool = False
    db_pool_size: int = 8
    log: LogSettings = field(default_factory=LogSettings)
    shutdown_grace_seconds: float = 10.0
    metrics_addr: str | None = None
    # EdDSA/RS256 only: the issuer's public keys by kid (from JWT_PUBLIC_KEYS_FILE), read at start-up.
    public_keys: Mapping[str, PublicKey] = field(default_factory=dict, repr=False)
    # EdDSA/RS256 without a keys file: the auth server whose GetJwks supplies the keys.
    jwks_auth_addr: str | None = None
    # Several replicas on one PostgreSQL (docs/architecture.md): this one's name in tasks.lease_owner (None:
    # hostname-pid-random), how long a claim holds without renewal, how often to look for work unprompted.
    replica_id: str | None = None
    lease_seconds: float = 15.0
    claim_interval_seconds: float = 2.0
    # Retries, sweeps and limits that neither an origin nor a user can wedge (GuardSettings below).
    guard: GuardSettings = field(default_factory=lambda: GuardSettings())

    # --- Live recordings (issue 14) ---
    # How long a live playlist that errors (404/403/5xx, timeouts, garbage) or stops changing is polled
    # before the recording is taken as ended.
    live_outage_seconds: float = 60.0
    # Revocations: polled from the auth server at auth_addr with AUTH_SERVICE_TOKEN (None: polling off).
    auth_addr: str = "127.0.0.1:50051"
    service_token: str | None = field(default=None, repr=False)
    revocation_poll_seconds: float = 3.0
    # This server's own TLS, and what it trusts and presents when it calls the auth server.
    tls: ServerTls | None = None
    client_tls: ClientTls | None = None

    @classmethod
    def from_env(cls, env: Env) -> DownloadSettings:
        """Build settings from `env`, raising ConfigError (one line) on the first bad value."""
        grpc_addr = env.string("DOWNLOAD_GRPC_ADDR", "127.0.0.1:50052")
        host, sep, port = grpc_addr.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"DOWNLOAD_GRPC_ADDR must be HOST:PORT, got {grpc_addr!r}")
        jwt = JwtSettings.from_env(env)
        return cls(
            jwt=jwt,
            database_url=database_url_from_env(env),
            grpc_addr=grpc_addr,
            storage_dir=Path(env.string("STORAGE_DIR", "./storage")),
            object_storage=ObjectStorage.from_env(env),
            max_active_tasks=env.integer("DOWNLOAD_MAX_ACTIVE_TASKS", 4, minimum=1, maximum=1000),
            segment_concurrency=env.integer("DOWNLOAD_SEGMENT_CONCURRENCY", 8, minimum=1, maximum=256),
            range_connections=env.integer("DOWNLOAD_RANGE_CONNECTIONS", 4, minimum=1, maximum=64),
            allow_private_networks=env.flag("DOWNLOAD_ALLOW_PRIVATE_NETWORKS", False),
            db_pool_size=env.integer("DOWNLOAD_DB_POOL_SIZE", 8, minimum=1, maximum=64),
            log=LogSettings.from_env(env),
            shutdown_grace_seconds=env.number("DOWNLOAD_SHUTDOWN_GRACE_SECONDS", 10.0, minimum=0.0),
            metrics_addr=env.get("DOWNLOAD_METRICS_ADDR"),
            public_keys=_public_keys(jwt),
            jwks_auth_addr=(
                env.string("AUTH_GRPC_ADDR", "127.0.0.1:50051") if jwt.asymmetric and not jwt.public_keys_file else None
            ),
            replica_id=_replica_id(env),
            lease_seconds=_finite(env, "DOWNLOAD_LEASE_SECONDS", 15.0, minimum=1.0),
            claim_interval_seconds=_finite(env, "DOWNLOAD_CLAIM_INTERVAL_SECONDS", 2.0, minimum=0.1),
            guard=GuardSettings.from_env(env),
            # --- Live recordings (issue 14) ---
            live_outage_seconds=_finite(env, "DOWNLOAD_LIVE_OUTAGE_SECONDS", 60.0, minimum=0.0),
            auth_addr=env.string("AUTH_GRPC_ADDR", "127.0.0.1:50051"),
            service_token=service_token_from_env(env),
            # At most 9 s: a revoked token must be refused within 10 s (API.md), one poll plus a call's time.
            revocation_poll_seconds=_bounded(env, "DOWNLOAD_REVOCATION_POLL_SECONDS", 3.0, 0.1, 9.0),
            tls=ServerTls.from_env(env, "DOWNLOAD"),
            client_tls=ClientTls.from_env(env),
        )


def _replica_id(env: Env) -> str | None:
    value = env.get("DOWNLOAD_REPLICA_ID")
    if value is not None and not _REPLICA_ID.fullmatch(value):
        raise ConfigError("DOWNLOAD_REPLICA_ID must be 1-128 of A-Z a-z 0-9 . _ : -")
    return value


def _finite(env: Env, name: str, default: float, *, minimum: float) -> float:
    value = env.number(name, default, minimum=minimum)
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number of seconds")
    return value


def _bounded(env: Env, name: str, default: float, minimum: float, maximum: float) -> float:
    value = _finite(env, name, default, minimum=minimum)
    if value > maximum:
        raise ConfigError(f"{name} must be at most {maximum:g} seconds")
    return value


def _public_keys(jwt: JwtSettings) -> Mapping[str, PublicKey]:
    """Keys from JWT_PUBLIC_KEYS_FILE; without one, they come from the auth server's GetJwks at start-up."""
    if not jwt.asymmetric or jwt.public_keys_file is None:
        return {}
    return load_jwks_file(jwt.public_keys_file, jwt.algorithm)


def database_url_from_env(env: Env) -> str:
    """DOWNLOAD_DATABASE_URL, or the embedded SQLite file; `migrate` needs only this, not the JWT key."""
    return env.string("DOWNLOAD_DATABASE_URL", default_sqlite_url("download.db"))
