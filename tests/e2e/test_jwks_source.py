"""The download server's keys from the auth server's GetJwks when that source misbehaves: down (the known
keys stay), publishing an empty key set (the known keys stay), or not up yet when the download server starts
(tokens are refused, then accepted once the keys arrive, with no restart)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest

from mediadl.download.v1 import download_pb2 as pb
from mediadl_common.keys import generate_ed25519_pem
from tests.auth.helpers import auth_settings, bearer, running_auth_server
from tests.download.api import DownloadApi, download_settings, rpc_failure, running_download_server
from tests.support.net import free_port

pytestmark = pytest.mark.e2e
# Refresh every second, and let an unknown kid refresh at once: the cases below happen within seconds.
FAST_REFRESH = {"JWT_ALGORITHM": "EdDSA", "JWT_JWKS_MIN_REFRESH_SECONDS": "0", "JWT_JWKS_REFRESH_SECONDS": "1"}
REFRESH_FAILED = "refreshing verification keys failed"


class Setup:
    def __init__(self, make_database_url: Callable[[str], str], tmp_path: Path) -> None:
        self.key_file = tmp_path / "signing.pem"
        self.key_file.write_bytes(generate_ed25519_pem())
        self.auth_db = make_database_url("sqlite")
        self.auth_addr = f"127.0.0.1:{free_port()}"
        self.download = download_settings(
            make_database_url("sqlite"), tmp_path / "storage", AUTH_GRPC_ADDR=self.auth_addr, **FAST_REFRESH
        )

    def auth(self, **env: str) -> Any:
        values = {**FAST_REFRESH, "JWT_PRIVATE_KEY_FILE": str(self.key_file), **env}
        return running_auth_server(auth_settings(self.auth_db, AUTH_GRPC_ADDR=self.auth_addr, **values))


@pytest.fixture
def setup(make_database_url: Callable[[str], str], tmp_path: Path) -> Setup:
    return Setup(make_database_url, tmp_path)


async def accepted(api: DownloadApi, token: str) -> bool:
    try:
        await api.stub.ListTasks(pb.ListTasksRequest(), metadata=bearer(token))
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err
        return False
    return True


async def logged(caplog: pytest.LogCaptureFixture, words: str, times: int = 1) -> None:
    """Wait until the in-process servers have logged `words` `times` times (the refresh has no other sign)."""
    for _ in range(300):
        if sum(words in r.getMessage() for r in caplog.records) >= times:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never logged {words!r} {times} time(s)")


@asynccontextmanager
async def serving_with_a_session(setup: Setup) -> AsyncIterator[tuple[DownloadApi, str, Any]]:
    async with setup.auth() as auth:
        _, session = await auth.new_session()
        async with running_download_server(setup.download) as api:
            assert await accepted(api, session.access_token)
            yield api, session.access_token, auth


async def test_the_known_keys_stay_while_the_auth_server_is_down(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving_with_a_session(setup) as (api, token, auth):
        await auth.running.stop(0)
        await logged(caplog, REFRESH_FAILED, times=2)  # two refreshes failed

        assert await accepted(api, token)
        # An unknown kid asks for a refresh too, which fails: still refused, and the known key still works.
        forged = jwt.encode({"sub": "x"}, generate_ed25519_pem(), algorithm="EdDSA", headers={"kid": "unknown"})
        refused = await rpc_failure(api.stub.ListTasks(pb.ListTasksRequest(), metadata=bearer(forged)))
        assert refused.code == grpc.StatusCode.UNAUTHENTICATED
        assert await accepted(api, token)


async def test_an_empty_key_set_does_not_replace_the_known_keys(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    async with serving_with_a_session(setup) as (api, token, auth):
        await auth.running.stop(0)
        # The same address now answers GetJwks with no key at all (an HS256 auth server publishes none).
        async with setup.auth(JWT_ALGORITHM="HS256", JWT_PRIVATE_KEY_FILE=""):
            await logged(caplog, REFRESH_FAILED, times=2)
            assert await accepted(api, token)


async def test_a_download_server_started_before_the_auth_server_accepts_tokens_once_it_is_up(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    async with setup.auth() as auth:  # a token from the auth server's last run
        _, session = await auth.new_session()
    async with running_download_server(setup.download) as api:
        assert any("no verification keys" in r.getMessage() for r in caplog.records)
        refused = await rpc_failure(api.stub.ListTasks(pb.ListTasksRequest(), metadata=bearer(session.access_token)))
        assert refused.code == grpc.StatusCode.UNAUTHENTICATED

        async with setup.auth():  # up at last, same key: fetched again every 2 s while none is known
            for _ in range(300):
                if await accepted(api, session.access_token):
                    break
                await asyncio.sleep(0.1)
            assert await accepted(api, session.access_token)
