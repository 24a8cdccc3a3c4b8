"""Logging set-up: ISO-8601 lines (or JSON) with module, function and line, and no secret in any line."""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path
from typing import Any

from mediadl_common import context
from mediadl_common.config import ConfigError, Env

# What must never reach a log line, whoever wrote it: JWTs, bearer credentials, key=value secrets,
# credentials in URLs and signed query strings (pre-signed object-store URLs, CDN tokens).
_SECRET_PATTERNS = [
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"(?i)(bearer\s+)[^\s'\"]+"), r"\1[redacted]"),
    (re.compile(r"(?i)(authorization['\"]?\s*[=:,]\s*['\"]?)[^'\"\s)]+"), r"\1[redacted]"),
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|secret_key|jwt_secret_key|refresh_token|access_token|api_key)"
            r"['\"]?\s*[=:]\s*['\"]?)[^\s'\",&)]+"
        ),
        r"\1[redacted]",
    ),
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@"), r"\1[redacted]@"),
    (
        re.compile(
            r"(?i)([?&](?:token|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|"
            r"x-goog-signature|key|auth|access_token|policy|hmac|hdnts|st|e|expires)=)[^&\s'\"#]+"
        ),
        r"\1[redacted]",
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _stamp_context(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.request_id = context.request_id.get() or "-"
        record.user_id = context.user_id.get() or "-"
        return record

    make.stamps_mediadl_context = True  # type: ignore[attr-defined]
    return make


def install_context_stamping() -> None:
    """Give every record the call's request id and user id, whichever handler ends up writing it."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "stamps_mediadl_context", False):
        logging.setLogRecordFactory(_stamp_context(current))


class ContextFilter(logging.Filter):
    """Masks secrets in every record a handler writes, and fills context fields the factory did not set."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = context.request_id.get() or "-"
            record.user_id = context.user_id.get() or "-"
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class IsoFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def formatException(self, ei: Any) -> str:  # noqa: N802
        # Exception messages can quote URLs or tokens too.
        return redact(super().formatException(ei))


TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s %(funcName)s:%(lineno)d [req=%(request_id)s user=%(user_id)s] %(message)s"
)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "user_id",
}


class JsonFormatter(IsoFormatter):
    """One JSON object per line, for log shippers; extras given with `extra=` become fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "module": record.module,
            "function": record.funcName,
            "line": record.lineno,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "user_id": getattr(record, "user_id", "-"),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool | type(None)) else redact(str(value))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _log_file(path: str | None) -> str | None:
    """LOG_FILE, with `{hostname}` replaced: replicas sharing one log volume each write (and rotate) their own."""
    return path.replace("{hostname}", socket.gethostname()) if path else None


@dataclass(frozen=True)
class LogSettings:
    level: str = "INFO"
    format: str = "text"
    file: str | None = None
    retention_days: int = 14
    slow_ms: float = 1000.0

    @classmethod
    def from_env(cls, env: Env) -> LogSettings:
        level = env.string("LOG_LEVEL", "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {level!r}")
        fmt = env.string("LOG_FORMAT", "text").lower()
        if fmt not in ("text", "json", "ecs"):
            raise ConfigError(f"LOG_FORMAT must be text, json or ecs, got {fmt!r}")
        return cls(
            level=level,
            format=fmt,
            file=_log_file(env.get("LOG_FILE")),
            retention_days=env.integer("LOG_RETENTION_DAYS", 14, minimum=0),
            slow_ms=env.number("LOG_SLOW_MS", 1000.0, minimum=0),
        )


def _formatter(fmt: str) -> logging.Formatter:
    if fmt == "ecs":
        from mediadl_common.log_ecs import EcsFormatter  # ecs-logging is only loaded when asked for

        return EcsFormatter()
    return JsonFormatter() if fmt == "json" else IsoFormatter(TEXT_FORMAT)


def configure_logging(settings: LogSettings | str | None = None, fmt: str = "text") -> None:
    """Install the stderr handler (and the daily-rotated file, if LOG_FILE is set) on the root logger.

    Idempotent: earlier handlers are replaced, so tests and re-configuration do not double lines.
    A plain level string (and format) is accepted too, for callers without full settings.
    """
    if isinstance(settings, str):
        settings = LogSettings(level=settings.upper(), format=fmt)
    settings = settings or LogSettings()
    formatter = _formatter(settings.format)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.file:
        Path(settings.file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            TimedRotatingFileHandler(
                settings.file, when="midnight", backupCount=settings.retention_days, utc=True, encoding="utf-8"
            )
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(ContextFilter())
        root.addHandler(handler)
    root.setLevel(settings.level)
    install_context_stamping()
