"""DownloadSettings: defaults, every variable, one-line errors, and no secret in repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from download_server.config import DownloadSettings
from mediadl_common.config import ConfigError, Env

SECRET = "s" * 40


def settings(**values: str) -> DownloadSettings:
    return DownloadSettings.from_env(Env.load(None, environ={"JWT_SECRET_KEY": SECRET, **values}))


def test_defaults() -> None:
    s = settings()
    assert (s.grpc_addr, s.storage_dir, s.max_active_tasks, s.segment_concurrency) == (
        "127.0.0.1:50052",
        Path("storage"),
        4,
        8,
    )
    assert s.database_url == "sqlite:///data/download.db"
    assert s.allow_private_networks is False
    assert s.range_connections == 4
    assert (s.jwt.algorithm, s.jwt.issuer, s.jwt.audience) == ("HS256", "mediadl-auth", "mediadl")
    assert (s.log.level, s.log.format, s.shutdown_grace_seconds, s.metrics_addr) == ("INFO", "text", 10.0, None)


def test_every_variable_is_read() -> None:
    s = settings(
        DOWNLOAD_DATABASE_URL="postgresql+psycopg2://dl:hunter2hunter2@db:5432/dl",
        DOWNLOAD_GRPC_ADDR="0.0.0.0:6000",
        STORAGE_DIR="/srv/media",
        DOWNLOAD_MAX_ACTIVE_TASKS="2",
        DOWNLOAD_SEGMENT_CONCURRENCY="16",
        DOWNLOAD_RANGE_CONNECTIONS="8",
        DOWNLOAD_ALLOW_PRIVATE_NETWORKS="true",
        DOWNLOAD_DB_POOL_SIZE="3",
        LOG_LEVEL="debug",
        LOG_FORMAT="JSON",
        DOWNLOAD_SHUTDOWN_GRACE_SECONDS="2.5",
        JWT_ISSUER="iss-x",
        JWT_AUDIENCE="aud-x",
        DOWNLOAD_METRICS_ADDR="127.0.0.1:9102",
    )
    assert s.database_url.endswith("@db:5432/dl")
    assert (s.grpc_addr, s.storage_dir, s.max_active_tasks, s.segment_concurrency) == (
        "0.0.0.0:6000",
        Path("/srv/media"),
        2,
        16,
    )
    assert (s.allow_private_networks, s.db_pool_size, s.log.level, s.log.format) == (True, 3, "DEBUG", "json")
    assert s.metrics_addr == "127.0.0.1:9102"
    assert s.range_connections == 8
    assert (s.shutdown_grace_seconds, s.jwt.issuer, s.jwt.audience) == (2.5, "iss-x", "aud-x")
    text = repr(s)
    assert SECRET not in text and "hunter2" not in text and "0.0.0.0:6000" in text


@pytest.mark.parametrize(
    ("values", "mentions"),
    [
        ({"JWT_SECRET_KEY": ""}, "JWT_SECRET_KEY"),
        ({"JWT_SECRET_KEY": "short"}, "JWT_SECRET_KEY"),
        ({"DOWNLOAD_MAX_ACTIVE_TASKS": "0"}, "DOWNLOAD_MAX_ACTIVE_TASKS"),
        ({"DOWNLOAD_SEGMENT_CONCURRENCY": "many"}, "DOWNLOAD_SEGMENT_CONCURRENCY"),
        ({"DOWNLOAD_RANGE_CONNECTIONS": "0"}, "DOWNLOAD_RANGE_CONNECTIONS"),
        ({"DOWNLOAD_ALLOW_PRIVATE_NETWORKS": "maybe"}, "DOWNLOAD_ALLOW_PRIVATE_NETWORKS"),
        ({"DOWNLOAD_GRPC_ADDR": "nohostport"}, "DOWNLOAD_GRPC_ADDR"),
        ({"DOWNLOAD_GRPC_ADDR": "host:99999"}, "DOWNLOAD_GRPC_ADDR"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"DOWNLOAD_SHUTDOWN_GRACE_SECONDS": "-1"}, "DOWNLOAD_SHUTDOWN_GRACE_SECONDS"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_variable(values: dict[str, str], mentions: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings(**values)
    message = str(info.value)
    assert mentions in message and "\n" not in message and SECRET not in message


def test_env_file_is_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"JWT_SECRET_KEY={SECRET}\nSTORAGE_DIR=/from/file\nDOWNLOAD_MAX_ACTIVE_TASKS=7\n")
    s = DownloadSettings.from_env(Env.load(env_file, environ={"DOWNLOAD_MAX_ACTIVE_TASKS": "9"}))
    assert (s.storage_dir, s.max_active_tasks) == (Path("/from/file"), 9)


def test_the_engine_guard_block() -> None:
    assert settings().guard.sweep_seconds == 60.0
    assert settings(DOWNLOAD_SWEEP_SECONDS="0").guard.sweep_seconds == 0.0
    with pytest.raises(ConfigError, match="DOWNLOAD_SWEEP_SECONDS"):
        settings(DOWNLOAD_SWEEP_SECONDS="-1")


def test_the_per_user_cap() -> None:
    assert settings().guard.max_active_tasks_per_user == 2
    assert settings(DOWNLOAD_MAX_ACTIVE_TASKS_PER_USER="0").guard.max_active_tasks_per_user == 0
    with pytest.raises(ConfigError, match="DOWNLOAD_MAX_ACTIVE_TASKS_PER_USER"):
        settings(DOWNLOAD_MAX_ACTIVE_TASKS_PER_USER="-1")


def test_the_file_limit() -> None:
    assert settings().guard.max_file_bytes == 20 * 1024**3
    assert settings(DOWNLOAD_MAX_FILE_BYTES="1000").guard.max_file_bytes == 1000
    with pytest.raises(ConfigError, match="DOWNLOAD_MAX_FILE_BYTES"):
        settings(DOWNLOAD_MAX_FILE_BYTES="0")


def test_the_minimum_transfer_rate() -> None:
    guard = settings(DOWNLOAD_MIN_RATE_BYTES_PER_SECOND="0", DOWNLOAD_MIN_RATE_WINDOW_SECONDS="5").guard
    assert (guard.min_rate_bytes, guard.min_rate_window_seconds) == (0.0, 5.0)
    assert (settings().guard.min_rate_bytes, settings().guard.min_rate_window_seconds) == (1024.0, 30.0)


def test_the_quarantine() -> None:
    assert settings().guard.quarantine_after == 3
    with pytest.raises(ConfigError, match="DOWNLOAD_QUARANTINE_AFTER"):
        settings(DOWNLOAD_QUARANTINE_AFTER="0")


def test_the_user_quota() -> None:
    assert settings().guard.user_quota_bytes == 0
    assert settings(DOWNLOAD_USER_QUOTA_BYTES="5000").guard.user_quota_bytes == 5000


def test_object_storage_settings_keep_the_secret_out_of_repr() -> None:
    assert settings().object_storage is None  # unset: the storage directory is the storage
    s = settings(
        STORAGE_URL="s3://media-bucket/recordings/prod",
        S3_ENDPOINT_URL="http://minio:9000",
        AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI-very-secret",
        AWS_REGION="eu-west-1",
    )
    bucket = s.object_storage
    assert bucket is not None
    assert (bucket.url, bucket.endpoint_url, bucket.region, bucket.access_key_id) == (
        "s3://media-bucket/recordings/prod",
        "http://minio:9000",
        "eu-west-1",
        "AKIAEXAMPLE",
    )
    assert bucket.secret_access_key == "wJalrXUtnFEMI-very-secret"
    assert "very-secret" not in repr(s) and "very-secret" not in repr(bucket)


@pytest.mark.parametrize(
    "values",
    [
        {"STORAGE_URL": "/srv/media"},
        {"STORAGE_URL": "s3://"},
        {"STORAGE_URL": "s3://Bad_Bucket/x"},
        {"STORAGE_URL": "s3://bucket/../x"},
        {"STORAGE_URL": "gs://bucket/x"},
        {"STORAGE_URL": "s3://bucket/x", "S3_ENDPOINT_URL": "minio:9000"},
    ],
)
def test_bad_object_storage_settings_fail_with_one_line(values: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**values)
    assert "\n" not in str(caught.value)
    assert ("S3_ENDPOINT_URL" if "S3_ENDPOINT_URL" in values else "STORAGE_URL") in str(caught.value)
