"""The use cases wired to real SQL but spied on: blocking work never runs on the event loop, and an
unknown email costs the same bcrypt verification as a wrong password."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from auth_server.adapters.passwords import BcryptHasher
from auth_server.adapters.tokens import JwtIssuer
from auth_server.adapters.unit_of_work import SqlUnitOfWork
from auth_server.domain.tokens import TokenLifetimes
from auth_server.domain.users import ProfileChanges
from auth_server.migrations import SCRIPT_LOCATION
from auth_server.services import AuthService
from mediadl_common.config import JwtSettings
from mediadl_common.db import Database, run_migrations
from mediadl_common.errors import Unauthenticated
from mediadl_common.tokens import TokenVerifier
from tests.auth.helpers import PASSWORD, SECRET


def assert_off_loop(what: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise AssertionError(f"{what} ran on the event loop thread")


class SpyHasher:
    """bcrypt, recording each call and failing any made from the event loop thread."""

    def __init__(self) -> None:
        self._real = BcryptHasher(4)
        self.calls: list[str] = []

    def hash(self, password: str) -> str:
        assert_off_loop("hash")
        self.calls.append("hash")
        return self._real.hash(password)

    def verify(self, password: str, password_hash: str) -> bool:
        assert_off_loop("verify")
        self.calls.append("verify")
        return self._real.verify(password, password_hash)

    def verify_dummy(self, password: str) -> None:
        assert_off_loop("verify_dummy")
        self.calls.append("verify_dummy")
        self._real.verify_dummy(password)


class OffLoopUnitOfWork(SqlUnitOfWork):
    def __enter__(self) -> OffLoopUnitOfWork:
        assert_off_loop("a database transaction")
        super().__enter__()
        return self


@pytest.fixture
async def wired(make_database_url: Callable[[str], str]) -> AsyncIterator[tuple[AuthService, SpyHasher]]:
    url = make_database_url("sqlite")
    run_migrations(url, SCRIPT_LOCATION)
    db = Database(url, pool_size=2)
    hasher = SpyHasher()
    service = AuthService(
        runner=db,
        uow=lambda: OffLoopUnitOfWork(db.session_factory),
        hasher=hasher,
        issuer=JwtIssuer(JwtSettings(secret_key=SECRET)),
        verifier=TokenVerifier(JwtSettings(secret_key=SECRET)),
        lifetimes=TokenLifetimes(60, 3600),
        page_secret=SECRET,
    )
    yield service, hasher
    db.close()


async def test_every_use_case_keeps_sql_and_bcrypt_off_the_event_loop(wired: tuple[AuthService, SpyHasher]) -> None:
    service, hasher = wired
    accounts, sessions = service.accounts, service.sessions
    await accounts.ensure_first_superuser(email="root@example.com", username="root", password=PASSWORD)
    user = await accounts.register(email="u@example.com", username="user", password=PASSWORD, full_name="U")
    pair = await sessions.login(email="u@example.com", password=PASSWORD)
    pair = await sessions.refresh(pair.refresh_token)
    await accounts.get_me(user.id)
    await accounts.update_me(user.id, ProfileChanges(bio="hi"))
    await accounts.get_user(user.id, user.id)
    await accounts.change_password(user.id, current_password=PASSWORD, new_password="new " + PASSWORD)
    await sessions.logout(pair.refresh_token)

    assert hasher.calls.count("hash") == 3 and "verify" in hasher.calls


@pytest.mark.parametrize("email", ["u@example.com", "nobody@example.com"])
async def test_a_failed_login_always_costs_one_bcrypt_verification(
    wired: tuple[AuthService, SpyHasher], email: str
) -> None:
    service, hasher = wired
    await service.accounts.register(email="u@example.com", username="user", password=PASSWORD, full_name="")
    hasher.calls.clear()

    with pytest.raises(Unauthenticated) as raised:
        await service.sessions.login(email=email, password="wrong " + PASSWORD)

    assert raised.value.message == "incorrect email or password"
    assert len(hasher.calls) == 1 and hasher.calls[0] in ("verify", "verify_dummy")
