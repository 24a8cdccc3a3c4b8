"""Settings from env and .env, and the claims checks of the token issuer and verifier."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from auth_server.adapters.tokens import JwtIssuer
from mediadl_common.config import ConfigError, Env, JwtSettings
from mediadl_common.errors import CREDENTIALS_EXPIRED, CREDENTIALS_INVALID, Unauthenticated
from mediadl_common.tokens import TokenVerifier

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


async def test_token_round_trip_and_type_pinning() -> None:
    settings = JwtSettings(secret_key=SECRET)
    verifier = TokenVerifier(settings)
    token, claims = JwtIssuer(settings).issue(sub="u1", type="refresh", ttl_seconds=60, family="fam1")
    verified = await verifier.verify(token, "refresh")
    assert verified == claims and verified.family == "fam1"
    with pytest.raises(Unauthenticated) as info:
        await verifier.verify(token, "access")
    assert info.value.reason == CREDENTIALS_INVALID
    # The interceptor's call: one argument, an access token.
    access, access_claims = JwtIssuer(settings).issue(sub="u1", type="access", ttl_seconds=60)
    assert await verifier.verify(access) == access_claims


async def test_expired_and_foreign_tokens() -> None:
    settings = JwtSettings(secret_key=SECRET)
    past = JwtIssuer(settings, clock=lambda: time.time() - 3600)
    expired, _ = past.issue(sub="u1", type="access", ttl_seconds=60)
    with pytest.raises(Unauthenticated) as info:
        await TokenVerifier(settings).verify(expired, "access")
    assert info.value.reason == CREDENTIALS_EXPIRED
    other = JwtIssuer(JwtSettings(secret_key="o" * 40, issuer="someone-else"))
    foreign, _ = other.issue(sub="u1", type="access", ttl_seconds=60)
    with pytest.raises(Unauthenticated) as info:
        await TokenVerifier(settings).verify(foreign, "access")
    assert info.value.reason == CREDENTIALS_INVALID
    unsigned = jwt.encode({"sub": "u1", "type": "access"}, key=None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(Unauthenticated) as info:
        await TokenVerifier(settings).verify(unsigned, "access")
    assert info.value.reason == CREDENTIALS_INVALID
