"""Settings from env and .env, and the JWT codec's claims checks."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from mediadl_common.config import ConfigError, Env, JwtSettings
from mediadl_common.errors import CREDENTIALS_EXPIRED, CREDENTIALS_INVALID
from mediadl_common.tokens import JwtCodec, TokenError

SECRET = "s" * 40


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("JWT_SECRET_KEY=from-file-" + "x" * 40 + "\nDOWNLOAD_MAX_ACTIVE_TASKS=3\n")
    env = Env.load(env_file, environ={"DOWNLOAD_MAX_ACTIVE_TASKS": "5"})
    assert env.integer("DOWNLOAD_MAX_ACTIVE_TASKS", 4) == 5
    assert (env.get("JWT_SECRET_KEY") or "").startswith("from-file-")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "JWT_SECRET_KEY is not set"),
        ({"JWT_SECRET_KEY": "short"}, "too short"),
        ({"JWT_SECRET_KEY": SECRET, "JWT_ALGORITHM": "none"}, "JWT_ALGORITHM"),
    ],
)
def test_jwt_settings_fail_with_one_line(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        JwtSettings.from_env(Env(values))
    assert "\n" not in str(info.value) and SECRET not in str(info.value)


def test_secret_not_in_repr() -> None:
    assert SECRET not in repr(JwtSettings.from_env(Env({"JWT_SECRET_KEY": SECRET})))


def test_env_number_validation() -> None:
    with pytest.raises(ConfigError, match="whole number"):
        Env({"X": "abc"}).integer("X", 1)
    with pytest.raises(ConfigError, match="at least 1"):
        Env({"X": "0"}).integer("X", 1, minimum=1)
    with pytest.raises(ConfigError, match="true or false"):
        Env({"X": "maybe"}).flag("X", False)


def test_codec_round_trip_and_type_pinning() -> None:
    codec = JwtCodec(JwtSettings(secret_key=SECRET))
    token, claims = codec.issue(sub="u1", type="refresh", ttl_seconds=60, family="fam1")
    verified = codec.verify(token, "refresh")
    assert verified == claims and verified.family == "fam1"
    with pytest.raises(TokenError) as info:
        codec.verify(token, "access")
    assert info.value.reason == CREDENTIALS_INVALID


def test_codec_expired_and_foreign_tokens() -> None:
    settings = JwtSettings(secret_key=SECRET)
    past = JwtCodec(settings, clock=lambda: time.time() - 3600)
    expired, _ = past.issue(sub="u1", type="access", ttl_seconds=60)
    with pytest.raises(TokenError) as info:
        JwtCodec(settings).verify(expired, "access")
    assert info.value.reason == CREDENTIALS_EXPIRED
    other = JwtCodec(JwtSettings(secret_key="o" * 40, issuer="someone-else"))
    foreign, _ = other.issue(sub="u1", type="access", ttl_seconds=60)
    with pytest.raises(TokenError) as info:
        JwtCodec(settings).verify(foreign, "access")
    assert info.value.reason == CREDENTIALS_INVALID
    unsigned = jwt.encode({"sub": "u1", "type": "access"}, key=None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(TokenError) as info:
        JwtCodec(settings).verify(unsigned, "access")
    assert info.value.reason == CREDENTIALS_INVALID
