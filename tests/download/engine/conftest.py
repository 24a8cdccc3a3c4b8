"""Engine test fixtures: the local origin (a copy of the media fixtures), a fast-retrying fetcher, storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from download_server.adapters.storage import Storage
from download_server.engine.fetch import Fetcher, FetchSettings
from download_server.engine.guard import PolicyGuard
from tests.support.origin import Origin

# Real timeouts and backoff, only shorter: a test that waits on a retry waits milliseconds.
FAST = FetchSettings(read_timeout=2.0, connect_timeout=2.0, backoff_base=0.005, backoff_max=0.05, max_attempts=4)


@pytest.fixture
async def origin(media_fixtures: Path, tmp_path: Path) -> AsyncIterator[Origin]:
    async with Origin.serving(media_fixtures, tmp_path) as served:
        yield served


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    # The origin is on loopback: private networks are allowed here; policy cases build their own fetcher.
    client = Fetcher(FAST, PolicyGuard(allow_private=True))
    yield client
    await client.close()


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "storage")
