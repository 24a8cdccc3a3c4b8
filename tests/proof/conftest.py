"""Fixtures of the proof tests: a running in-process auth server per test, on each database kind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.auth.helpers import AuthClient, auth_settings, running_auth_server


@pytest.fixture
async def auth(database_url: str) -> AsyncIterator[AuthClient]:
    """The auth server on a new database, with no users."""
    async with running_auth_server(auth_settings(database_url)) as client:
        yield client
