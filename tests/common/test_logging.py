"""Log redaction, formats and daily rotation with retention."""

from __future__ import annotations

import logging
import time
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path

import pytest

from mediadl_common.config import ConfigError, Env
from mediadl_common.log import LogSettings, configure_logging, redact

SECRETS = [
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", ["eyJhbGci", "eyJzdWIi"]),
    ("login with password=hunter2 failed", ["hunter2"]),
    ("{'password': 'hunter2', 'user': 'x'}", ["hunter2"]),
    ("GET https://user:pa55@cdn.example/v.m3u8", ["pa55"]),
    ("GET https://cdn.example/seg1.ts?token=abc123&sig=def456&n=1", ["abc123", "def456"]),
    ("https://bucket.s3/x.mp4?X-Amz-Credential=AKIAXX&X-Amz-Signature=0123abcd", ["AKIAXX", "0123abcd"]),
    ("postgresql+psycopg2://app:topsecret@db:5432/mediadl", ["topsecret"]),
    ("JWT_SECRET_KEY=abcdef0123456789", ["abcdef0123456789"]),
]


@pytest.mark.parametrize(("text", "hidden"), SECRETS)
def test_redact_hides_secrets(text: str, hidden: list[str]) -> None:
    cleaned = redact(text)
    for secret in hidden:
        assert secret not in cleaned


def test_redact_keeps_ordinary_text() -> None:
    text = "task 1234 finished: 6 segments, 89409 bytes from https://cdn.example/live/index.m3u8?n=3"
    assert redact(text) == text


def test_filter_redacts_whatever_logger_wrote_it(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    configure_logging(LogSettings(level="INFO", format="text", file=str(log_file)))
    try:
        logging.getLogger("some.library").warning("fetch failed for %s", "https://o/x?sig=zzzsecret")
        try:
            raise ValueError("bad password=hunter2")
        except ValueError:
            logging.getLogger("other").exception("oops")
    finally:
        for handler in logging.getLogger().handlers:
            handler.close()
        logging.getLogger().handlers.clear()
    raw = log_file.read_text()
    assert "zzzsecret" not in raw and "hunter2" not in raw and "ValueError" in raw
    # ISO-8601 time, level, logger, function:line on every line.
    first = raw.splitlines()[0]
    assert first[:4].isdigit() and "T" in first[:11] and " WARNING some.library " in first


def test_daily_rotation_keeps_configured_archives(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    configure_logging(LogSettings(file=str(log_file), retention_days=2))
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, TimedRotatingFileHandler))
    try:
        log = logging.getLogger("rotation")
        now = int(time.time())
        for days_ago in (5, 4, 3, 2, 1):
            # Pretend midnight passed `days_ago` days ago: the next record starts a new file.
            handler.rolloverAt = now - days_ago * 86400
            log.info("record from day -%d", days_ago)
    finally:
        handler.close()
        logging.getLogger().handlers.clear()
    archives = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("server.log."))
    assert len(archives) == 2, archives
    assert "record from day -1" in log_file.read_text()


def test_log_settings_validation() -> None:
    assert LogSettings.from_env(Env({})).format == "text"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        LogSettings.from_env(Env({"LOG_FORMAT": "xml"}))
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        LogSettings.from_env(Env({"LOG_LEVEL": "loud"}))
