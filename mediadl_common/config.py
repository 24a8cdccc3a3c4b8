"""Typed settings read from the environment over an optional `.env` file, validated with one-line errors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

MIN_SECRET_BYTES = 32
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line fit for an operator."""


class Env:
    """Read-only view of settings: real environment variables win over the `.env` file."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    @classmethod
    def load(cls, env_file: str | Path | None = ".env", environ: Mapping[str, str] | None = None) -> Env:
        merged: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        merged.update(os.environ if environ is None else environ)
        return cls(merged)

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._values.get(name)
        return default if value is None or value == "" else value

    def string(self, name: str, default: str) -> str:
        value = self.get(name, default)
        assert value is not None
        return value

    def integer(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{name} must be at most {maximum}, got {value}")
        return value

    def number(self, name: str, default: float, *, minimum: float | None = None) -> float:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.get(name)
        if raw is None:
            return default
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class JwtSettings:
    """What both servers need to issue or verify tokens. The secret never appears in repr()."""

    secret_key: str = field(repr=False)
    algorithm: str = "HS256"
    issuer: str = "mediadl-auth"
    audience: str = "mediadl"

    @classmethod
    def from_env(cls, env: Env) -> JwtSettings:
        secret = env.get("JWT_SECRET_KEY")
        if secret is None:
            raise ConfigError("JWT_SECRET_KEY is not set (run `make run` once to write a dev .env, or export it)")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"JWT_SECRET_KEY is too short: it needs at least {MIN_SECRET_BYTES} bytes")
        algorithm = env.string("JWT_ALGORITHM", "HS256")
        if algorithm not in HMAC_ALGORITHMS:
            raise ConfigError(f"JWT_ALGORITHM must be one of {', '.join(HMAC_ALGORITHMS)}, got {algorithm!r}")
        return cls(
            secret_key=secret,
            algorithm=algorithm,
            issuer=env.string("JWT_ISSUER", "mediadl-auth"),
            audience=env.string("JWT_AUDIENCE", "mediadl"),
        )


def default_sqlite_url(name: str, data_dir: str | Path = "data") -> str:
    """The embedded default database: a SQLite file under ./data/."""
    return f"sqlite:///{Path(data_dir) / name}"
