"""AuthSettings.from_env: defaults, overrides, one-line ConfigErrors, and no secret in repr()."""

from __future__ import annotations

import pytest

from auth_server.config import AuthSettings
from mediadl_common.config import ConfigError, Env
from tests.auth.helpers import SECRET

VALID = {"JWT_SECRET_KEY": SECRET}


def settings(**env: str) -> AuthSettings:
    return AuthSettings.from_env(Env({**VALID, **env}))


def test_defaults_follow_the_api_contract() -> None:
    s = settings()

    assert s.grpc_addr == "127.0.0.1:50051"
    assert s.database_url == "sqlite:///data/auth.db"
    assert (s.access_token_ttl_seconds, s.refresh_token_ttl_seconds) == (30 * 60, 7 * 24 * 3600)
    assert s.bcrypt_rounds == 12
    assert s.first_superuser is None
    assert (s.jwt.algorithm, s.jwt.issuer, s.jwt.audience) == ("HS256", "mediadl-auth", "mediadl")
    assert (s.log.level, s.log.format) == ("INFO", "text")


def test_every_setting_can_be_overridden() -> None:
    s = settings(
        AUTH_GRPC_ADDR="0.0.0.0:6000",
        AUTH_DATABASE_URL="postgresql+psycopg2://u:p@db:5432/auth",
        JWT_ACCESS_TOKEN_EXPIRE_MINUTES="5",
        JWT_REFRESH_TOKEN_EXPIRE_DAYS="1",
        AUTH_BCRYPT_ROUNDS="4",
        AUTH_FIRST_SUPERUSER_EMAIL="Admin@Example.com",
        AUTH_FIRST_SUPERUSER_USERNAME="admin",
        AUTH_FIRST_SUPERUSER_PASSWORD="admin password",
        LOG_LEVEL="debug",
        LOG_FORMAT="json",
        AUTH_SHUTDOWN_GRACE_SECONDS="2.5",
    )

    assert (s.grpc_addr, s.database_url) == ("0.0.0.0:6000", "postgresql+psycopg2://u:p@db:5432/auth")
    assert (s.access_token_ttl_seconds, s.refresh_token_ttl_seconds, s.bcrypt_rounds) == (300, 86400, 4)
    assert s.first_superuser is not None and s.first_superuser.username == "admin"
    assert (s.log.level, s.log.format, s.shutdown_grace_seconds) == ("DEBUG", "json", 2.5)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"JWT_SECRET_KEY": ""}, "JWT_SECRET_KEY"),
        ({"JWT_SECRET_KEY": "s" * 31}, "JWT_SECRET_KEY"),
        ({"AUTH_BCRYPT_ROUNDS": "3"}, "AUTH_BCRYPT_ROUNDS"),
        ({"AUTH_BCRYPT_ROUNDS": "twelve"}, "AUTH_BCRYPT_ROUNDS"),
        ({"JWT_ACCESS_TOKEN_EXPIRE_MINUTES": "0"}, "JWT_ACCESS_TOKEN_EXPIRE_MINUTES"),
        ({"AUTH_FIRST_SUPERUSER_EMAIL": "a@example.com"}, "AUTH_FIRST_SUPERUSER_USERNAME"),
        (
            {
                "AUTH_FIRST_SUPERUSER_EMAIL": "a@example.com",
                "AUTH_FIRST_SUPERUSER_USERNAME": "admin",
                "AUTH_FIRST_SUPERUSER_PASSWORD": "p" * 73,
            },
            "AUTH_FIRST_SUPERUSER_PASSWORD",
        ),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ],
    ids=["no-secret", "short-secret", "rounds-low", "rounds-nan", "ttl-zero", "half-superuser", "long-pw", "log"],
)
def test_bad_settings_raise_one_line_naming_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings(**env)

    message = str(raised.value)
    assert names in message and "\n" not in message
    assert "p" * 73 not in message and "s" * 31 not in message


def test_repr_shows_no_secret() -> None:
    s = settings(
        AUTH_DATABASE_URL="postgresql+psycopg2://auth:db-password-123@db/auth",
        AUTH_FIRST_SUPERUSER_EMAIL="a@example.com",
        AUTH_FIRST_SUPERUSER_USERNAME="admin",
        AUTH_FIRST_SUPERUSER_PASSWORD="superuser password",
    )

    text = repr(s)
    assert "grpc_addr" in text
    assert SECRET not in text and "db-password-123" not in text and "superuser password" not in text
