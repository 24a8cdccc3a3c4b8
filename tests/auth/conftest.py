"""Fixtures of the auth tests: a running in-process auth server per test, on each database kind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.auth.helpers import ADMIN_ENV, AuthClient, auth_settings, running_auth_server


@pytest.fixture
async def auth(database_url: str) -> AsyncIterator[AuthClient]:
    """The auth server on a new database, with no users."""
    async with running_auth_server(auth_settings(database_url)) as client:
        yield client


@pytest.fixture
async def auth_with_admin(database_url: str) -> AsyncIterator[AuthClient]:
    """The auth server on a new database whose first superuser (helpers.ADMIN) was created at start-up."""
    async with running_auth_server(auth_settings(database_url, **ADMIN_ENV)) as client:
        yield client
