"""Case-insensitive unique names, the control-character rule, and the migration that refuses clashing rows."""

from __future__ import annotations

import grpc
import pytest
from alembic import command
from alembic.config import Config

from auth_server.migrations import SCRIPT_LOCATION
from mediadl.auth.v1 import auth_pb2
from mediadl_common.db import run_migrations
from tests.auth.helpers import PASSWORD, AuthClient, bearer, execute_sql, failure

BAD_CHARS = ["\x00", "\x07", "\x1b", "\x85", "\x9f", "\u202e", "\u2066"]


async def test_a_username_differing_only_in_case_is_taken(auth: AuthClient) -> None:
    await auth.register(email="ada@example.com", username="Ada")

    error = await failure(auth.register(email="other@example.com", username="ada"))

    assert error.code == grpc.StatusCode.ALREADY_EXISTS
    assert error.reason == "USERNAME_TAKEN"


async def test_an_email_in_another_case_is_taken_and_logs_in(auth: AuthClient) -> None:
    await auth.register(email="Grace@Example.com", username="grace")

    error = await failure(auth.register(email="GRACE@example.COM", username="grace2"))

    assert error.code == grpc.StatusCode.ALREADY_EXISTS
    assert (await auth.login("gRaCe@example.com")).user.username == "grace"


@pytest.mark.parametrize("char", BAD_CHARS, ids=[f"U+{ord(c):04X}" for c in BAD_CHARS])
async def test_control_characters_are_refused_in_every_text_field(auth: AuthClient, char: str) -> None:
    register = await failure(
        auth.stub.Register(
            auth_pb2.RegisterRequest(
                email=f"a{char}b@example.com", username="fine_name", password=PASSWORD, full_name=f"A{char}B"
            )
        )
    )
    assert register.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(register.violations) == {"email", "full_name"}

    login = await failure(auth.stub.Login(auth_pb2.LoginRequest(email=f"x{char}@example.com", password=PASSWORD)))
    assert login.code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(login.violations) == ["email"]

    _, session = await auth.new_session()
    for request in (
        auth_pb2.UpdateMeRequest(full_name=f"x{char}"),
        auth_pb2.UpdateMeRequest(bio=f"x{char}"),
        auth_pb2.UpdateMeRequest(avatar_url=f"https://example.com/{char}"),
    ):
        error = await failure(auth.stub.UpdateMe(request, metadata=bearer(session.access_token)))
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_bio_may_hold_newlines_and_tabs_and_a_password_anything(auth: AuthClient) -> None:
    odd_password = "pass\x00\u202eword\x07"
    user = await auth.register(password=odd_password)
    session = await auth.login(user.email, odd_password)

    response = await auth.stub.UpdateMe(
        auth_pb2.UpdateMeRequest(bio="line one\r\nline\ttwo\n"), metadata=bearer(session.access_token)
    )

    assert response.user.bio == "line one\r\nline\ttwo\n"


def _config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _insert_user(url: str, uid: str, email: str, username: str) -> None:
    stored = uid.replace("-", "") if url.startswith("sqlite") else uid
    execute_sql(
        url,
        "INSERT INTO users (id, email, username, password_hash, full_name, bio, avatar_url, is_active, is_superuser,"
        " create_time, update_time) VALUES (:id, :e, :u, 'h', '', '', '', true, false, :t, :t)",
        {"id": stored, "e": email, "u": username, "t": "2026-01-01 00:00:00+00:00"},
    )


def test_the_migration_refuses_clashing_rows_and_names_them(database_url: str) -> None:
    command.upgrade(_config(database_url), "auth_0001")
    _insert_user(database_url, "00000000-0000-0000-0000-000000000001", "ada@example.com", "Ada")
    _insert_user(database_url, "00000000-0000-0000-0000-000000000002", "bob@example.com", "ada")
    _insert_user(database_url, "00000000-0000-0000-0000-000000000003", "Bob@example.com", "bob")

    with pytest.raises(RuntimeError) as refused:
        run_migrations(database_url, SCRIPT_LOCATION)

    message = str(refused.value)
    assert "username 'Ada' / 'ada'" in message
    assert "email 'Bob@example.com' / 'bob@example.com'" in message

    # Once an operator settles the clashes, the same migration runs and enforces the rule.
    execute_sql(database_url, "UPDATE users SET username = 'ada2' WHERE username = 'ada'")
    execute_sql(database_url, "DELETE FROM users WHERE email = 'Bob@example.com'")
    run_migrations(database_url, SCRIPT_LOCATION)
    with pytest.raises(Exception, match=r"(?i)unique"):
        _insert_user(database_url, "00000000-0000-0000-0000-000000000004", "new@example.com", "ADA")
