"""bcrypt has a pool of its own: with every hashing thread busy, calls that need no hash still get a database
thread at once (before, hashing ran in the database pool and a login storm starved GetMe for seconds)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from auth_server.adapters.hashing import HashingPool
from auth_server.bootstrap import build_service, build_tokens
from auth_server.migrations import SCRIPT_LOCATION
from mediadl_common.db import Database, run_migrations
from tests.auth.helpers import PASSWORD, auth_settings


class GatedHasher:
    """Verifies only once the test opens the gate; counts the verifications waiting at it."""

    def __init__(self, busy_at: int) -> None:
        self.gate = threading.Event()
        self.waiting = 0
        self._lock = threading.Lock()
        self._busy_at = busy_at
        self._loop = asyncio.get_running_loop()
        self.all_busy = asyncio.Event()

    def hash(self, password: str) -> str:
        return f"plain:{password}"

    def verify(self, password: str, password_hash: str) -> bool:
        with self._lock:
            self.waiting += 1
            if self.waiting == self._busy_at:
                self._loop.call_soon_threadsafe(self.all_busy.set)
        self.gate.wait(60)
        return password_hash == f"plain:{password}"

    def verify_dummy(self, password: str) -> None:
        self.verify(password, "")


async def test_calls_without_hashing_do_not_wait_behind_a_login_storm(make_database_url: Callable[[str], str]) -> None:
    url = make_database_url("sqlite")
    settings = auth_settings(url, AUTH_DB_POOL_SIZE="2")
    run_migrations(url, SCRIPT_LOCATION)
    database = Database(url, pool_size=settings.db_pool_size)
    hashing = HashingPool(2)
    hasher = GatedHasher(busy_at=hashing.workers)
    service = build_service(settings, database, hasher, build_tokens(settings), hashing=hashing)  # type: ignore[arg-type]
    accounts, sessions = service.accounts, service.sessions
    try:
        user = await accounts.register(email="storm@example.com", username="storm", password=PASSWORD, full_name="")
        storm = [
            asyncio.create_task(sessions.login(email="storm@example.com", password=PASSWORD, client=f"10.0.0.{i}"))
            for i in range(10)
        ]
        await asyncio.wait_for(hasher.all_busy.wait(), timeout=30)  # every hashing thread is held at the gate
        # Eight more logins wait in the hashing pool's queue, not in the database pool's: GetMe goes through.
        me = await asyncio.wait_for(accounts.get_me(user.id), timeout=30)
        assert me.id == user.id
        assert not any(task.done() for task in storm)
        hasher.gate.set()
        pairs = await asyncio.gather(*storm)
        assert {pair.user.id for pair in pairs} == {user.id}
    finally:
        hasher.gate.set()
        await asyncio.to_thread(hashing.close)
        await asyncio.to_thread(database.close)
