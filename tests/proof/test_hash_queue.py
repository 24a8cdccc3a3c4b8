"""Hash work is bounded and fair: a Register flood from one client is refused past its lane (RetryInfo), and
another client's login is hashed after at most `per_client` of the flood's jobs, not behind all of them.
A duplicate Register is refused before any hash."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from auth_server.adapters.hashing import SERVER_BUSY, HashingPool, HashQueueLimits
from auth_server.bootstrap import build_service, build_tokens
from auth_server.migrations import SCRIPT_LOCATION
from auth_server.services import AuthService
from mediadl_common.db import Database, run_migrations
from mediadl_common.errors import AlreadyExists, ResourceExhausted
from tests.auth.helpers import PASSWORD, auth_settings

T = TypeVar("T")


class RecordingHasher:
    """A slow stand-in for bcrypt (a fixed sleep) that records which password each job was for, in order."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self._lock = threading.Lock()

    def _work(self, password: str) -> None:
        time.sleep(0.02)
        with self._lock:
            self.order.append(password)

    def hash(self, password: str) -> str:
        self._work(password)
        return f"plain:{password}"

    def verify(self, password: str, password_hash: str) -> bool:
        self._work(password)
        return password_hash == f"plain:{password}"

    def verify_dummy(self, password: str) -> None:
        self._work(password)


class EntryRecordingPool(HashingPool):
    """Notes how many hashes had run when each client's first job entered the pool: the fairness bound counts
    from there (a login reads its user from the database first, which takes longer on a loaded machine)."""

    def __init__(self, hasher: RecordingHasher, workers: int, limits: HashQueueLimits) -> None:
        super().__init__(workers, limits)
        self.entered: dict[str, int] = {}
        self._hasher = hasher

    async def run_for(self, client: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        self.entered.setdefault(client, len(self._hasher.order))
        return await super().run_for(client, fn, *args, **kwargs)


@asynccontextmanager
async def service_with(
    url: str, hasher: RecordingHasher, limits: HashQueueLimits
) -> AsyncIterator[tuple[AuthService, EntryRecordingPool]]:
    settings = auth_settings(url, AUTH_REGISTER_MAX_PER_CLIENT="0")
    run_migrations(url, SCRIPT_LOCATION)
    database = Database(url, pool_size=4)
    hashing = EntryRecordingPool(hasher, 1, limits)
    try:
        service = build_service(settings, database, hasher, build_tokens(settings), hashing=hashing)  # type: ignore[arg-type]
        yield service, hashing
    finally:
        await asyncio.to_thread(hashing.close)
        await asyncio.to_thread(database.close)


async def test_a_register_flood_is_cut_and_another_login_goes_first(make_database_url: Callable[[str], str]) -> None:
    hasher = RecordingHasher()
    limits = HashQueueLimits(per_client=2, client_queue=4, queue_limit=32)
    async with service_with(make_database_url("sqlite"), hasher, limits) as (service, pool):
        await service.accounts.register(email="real@example.com", username="real", password=PASSWORD, full_name="")
        hasher.order.clear()
        flood = [
            asyncio.create_task(
                service.accounts.register(
                    email=f"f{i}@example.com",
                    username=f"flood{i}",
                    password=f"flood pass {i}",
                    full_name="",
                    client="x",
                )
            )
            for i in range(40)
        ]
        await asyncio.sleep(0)  # let the flood take its lane
        pair = await service.sessions.login(email="real@example.com", password=PASSWORD, client="real")
        results = await asyncio.gather(*flood, return_exceptions=True)

    assert pair.user.email == "real@example.com"
    refusals = [r for r in results if isinstance(r, ResourceExhausted)]
    # How many get in depends on how fast the lane drains meanwhile; most of the flood cannot.
    assert len(refusals) >= 40 - 2 * (limits.per_client + limits.client_queue)
    assert all(r.reason == SERVER_BUSY and r.retry_after and r.retry_after > 0 for r in refusals)
    # The real login was hashed after at most per_client flood jobs (those already in the pool when it came),
    # not behind the rest of the flood.
    assert hasher.order.index(PASSWORD) - pool.entered["real"] <= limits.per_client


async def test_a_duplicate_register_costs_no_hash(make_database_url: Callable[[str], str]) -> None:
    hasher = RecordingHasher()
    async with service_with(make_database_url("sqlite"), hasher, HashQueueLimits()) as (service, _pool):
        await service.accounts.register(email="ada@example.com", username="ada", password=PASSWORD, full_name="")
        hashed = len(hasher.order)
        for email, username in (("ADA@example.com", "other"), ("b@example.com", "ADA")):
            with pytest.raises(AlreadyExists):
                await service.accounts.register(email=email, username=username, password=PASSWORD, full_name="")
        assert len(hasher.order) == hashed
