"""Typed settings read from the environment over an optional `.env` file, validated with one-line errors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

MIN_SECRET_BYTES = 32
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = ("EdDSA", "RS256")


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
    """What both servers need to issue or verify tokens. The secret never appears in repr().

    HS* algorithms sign and verify with JWT_SECRET_KEY. EdDSA/RS256 sign with the private key(s) in
    JWT_PRIVATE_KEY_FILE (auth server only) and verify with public keys: a JWKS file
    (JWT_PUBLIC_KEYS_FILE) or the auth server's GetJwks. JWT_SECRET_KEY stays required in every mode:
    it also keys page tokens.
    """

    secret_key: str = field(repr=False)
    algorithm: str = "HS256"
    issuer: str = "mediadl-auth"
    audience: str = "mediadl"
    private_key_file: str | None = None
    public_keys_file: str | None = None
    # Periodic refresh of keys fetched from the auth server, and the floor between refreshes that a
    # token with an unknown kid may trigger.
    jwks_refresh_seconds: float = 300.0
    jwks_min_refresh_seconds: float = 30.0

    @property
    def asymmetric(self) -> bool:
        return self.algorithm in ASYMMETRIC_ALGORITHMS

    @classmethod
    def from_env(cls, env: Env) -> JwtSettings:
        secret = env.get("JWT_SECRET_KEY")
        if secret is None:
            raise ConfigError("JWT_SECRET_KEY is not set (run `make run` once to write a dev .env, or export it)")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"JWT_SECRET_KEY is too short: it needs at least {MIN_SECRET_BYTES} bytes")
        algorithm = env.string("JWT_ALGORITHM", "HS256")
        allowed = (*HMAC_ALGORITHMS, *ASYMMETRIC_ALGORITHMS)
        if algorithm not in allowed:
            raise ConfigError(f"JWT_ALGORITHM must be one of {', '.join(allowed)}, got {algorithm!r}")
        return cls(
            secret_key=secret,
            algorithm=algorithm,
            issuer=env.string("JWT_ISSUER", "mediadl-auth"),
            audience=env.string("JWT_AUDIENCE", "mediadl"),
            private_key_file=env.get("JWT_PRIVATE_KEY_FILE"),
            public_keys_file=env.get("JWT_PUBLIC_KEYS_FILE"),
            jwks_refresh_seconds=env.number("JWT_JWKS_REFRESH_SECONDS", 300.0, minimum=1),
            jwks_min_refresh_seconds=env.number("JWT_JWKS_MIN_REFRESH_SECONDS", 30.0, minimum=0),
        )


def default_sqlite_url(name: str, data_dir: str | Path = "data") -> str:
    """The embedded default database: a SQLite file under ./data/."""
    return f"sqlite:///{Path(data_dir) / name}"


MIN_SERVICE_TOKEN_BYTES = 16


def service_token_from_env(env: Env) -> str | None:
    """AUTH_SERVICE_TOKEN (both servers): the bearer secret of ListRevocations; None when unset."""
    token = env.get("AUTH_SERVICE_TOKEN")
    if token is None or token == "":
        return None
    if len(token.encode()) < MIN_SERVICE_TOKEN_BYTES or token != token.strip():
        raise ConfigError(f"AUTH_SERVICE_TOKEN must be at least {MIN_SERVICE_TOKEN_BYTES} bytes without blanks around")
    return token
