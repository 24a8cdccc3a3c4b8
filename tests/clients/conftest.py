"""Fixtures of the client tests: both real servers in-process (clients.testing), and a call counter."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from clients.testing import MediadlServers, mediadl_servers

REFRESH_METHOD = "/mediadl.auth.v1.AuthService/RefreshToken"


@pytest.fixture
async def servers(
    db_kind: str, make_database_url: Callable[[str], str], tmp_path: Path
) -> AsyncIterator[MediadlServers]:
    """Both servers on new databases of each kind in turn (the test runs once per kind)."""
    async with mediadl_servers(
        tmp_path,
        auth_database_url=make_database_url(db_kind),
        download_database_url=make_database_url(db_kind),
    ) as running:
        yield running


@pytest.fixture
async def sqlite_servers(tmp_path: Path) -> AsyncIterator[MediadlServers]:
    """Both servers on SQLite only: for tests whose subject is the client, not the storage."""
    async with mediadl_servers(tmp_path) as running:
        yield running


class CallCounter(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Counts the unary calls a client makes, by full method name."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Awaitable[Any]], client_call_details: Any, request: Any
    ) -> Any:
        method = client_call_details.method
        self.calls[method.decode() if isinstance(method, bytes) else method] += 1
        return await continuation(client_call_details, request)

    @property
    def refreshes(self) -> int:
        return self.calls[REFRESH_METHOD]
