"""Revocation reaches every download server: a deactivated user's next download RPC is refused with
CREDENTIALS_REVOKED within 10 s on each replica (HS256 and EdDSA), tokens issued after reactivation work,
and an auth server outage blocks nothing (the last list stays in force, a log line and a metric say so)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from mediadl.auth.v1 import auth_pb2
from mediadl.download.v1 import download_pb2 as pb
from mediadl_common.keys import generate_ed25519_pem
from tests.auth.helpers import ADMIN, ADMIN_ENV, SECRET, AuthClient, auth_settings, bearer, running_auth_server
from tests.download.api import DownloadApi, download_settings, running_download_server
from tests.support.status import status_of

SERVICE_TOKEN = "e2e-service-token-0123456789abcdef"
DEADLINE_SECONDS = 10.0


async def outcome(api: DownloadApi, token: str) -> str:
    """ "OK", or the ErrorInfo reason of the refusal."""
    try:
        await api.stub.ListTasks(pb.ListTasksRequest(), metadata=bearer(token))
    except grpc.aio.AioRpcError as err:
        return status_of(err).reason or err.code().name
    return "OK"


async def seconds_until_refused(api: DownloadApi, token: str) -> float:
    started = time.monotonic()
    while await outcome(api, token) == "OK":
        assert time.monotonic() - started < DEADLINE_SECONDS, "the revoked token still works"
        await asyncio.sleep(0.05)
    assert await outcome(api, token) == "CREDENTIALS_REVOKED"
    return time.monotonic() - started


async def set_active(auth: AuthClient, admin: tuple[tuple[str, str]], user_id: str, active: bool) -> None:
    await auth.stub.UpdateUser(
        auth_pb2.UpdateUserRequest(user_id=user_id, is_active=active, update_mask=FieldMask(paths=["is_active"])),
        metadata=admin,
    )


@contextlib.asynccontextmanager
async def cluster(
    make_url: Callable[[str], str], tmp_path: Path, env: dict[str, str], replicas: int = 2
) -> AsyncIterator[tuple[AuthClient, list[DownloadApi]]]:
    common = {"AUTH_SERVICE_TOKEN": SERVICE_TOKEN, **env}
    async with running_auth_server(auth_settings(make_url("sqlite"), **ADMIN_ENV, **common)) as auth:
        async with contextlib.AsyncExitStack() as stack:
            apis = []
            for i in range(replicas):
                settings = download_settings(
                    make_url("sqlite"),
                    tmp_path / f"storage{i}",
                    JWT_SECRET_KEY=SECRET,
                    AUTH_GRPC_ADDR=f"127.0.0.1:{auth.running.port}",
                    DOWNLOAD_REVOCATION_POLL_SECONDS="1",
                    **common,
                )
                apis.append(await stack.enter_async_context(running_download_server(settings)))
            yield auth, apis


@pytest.mark.parametrize("algorithm", ["HS256", "EdDSA"])
async def test_deactivation_reaches_every_replica_and_reactivation_works(
    make_database_url: Callable[[str], str], tmp_path: Path, algorithm: str
) -> None:
    env = {"JWT_ALGORITHM": algorithm}
    if algorithm == "EdDSA":
        key_file = tmp_path / "signing.pem"
        key_file.write_bytes(generate_ed25519_pem())
        env["JWT_PRIVATE_KEY_FILE"] = str(key_file)
    async with cluster(make_database_url, tmp_path, env) as (auth, replicas):
        admin = bearer((await auth.login(ADMIN["email"], ADMIN["password"])).access_token)
        user, session = await auth.new_session()
        assert [await outcome(api, session.access_token) for api in replicas] == ["OK", "OK"]

        await set_active(auth, admin, user.id, False)
        delays = [await seconds_until_refused(api, session.access_token) for api in replicas]
        assert all(delay < DEADLINE_SECONDS for delay in delays)

        await set_active(auth, admin, user.id, True)
        fresh = await auth.login(user.email)  # issued after the revocation, quite likely in the same second
        assert [await outcome(api, fresh.access_token) for api in replicas] == ["OK", "OK"]
        assert await outcome(replicas[0], session.access_token) == "CREDENTIALS_REVOKED"


async def test_an_auth_outage_blocks_nothing_and_is_reported(
    make_database_url: Callable[[str], str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with cluster(make_database_url, tmp_path, {}, replicas=1) as (auth, (api,)):
        admin = bearer((await auth.login(ADMIN["email"], ADMIN["password"])).access_token)
        victim, revoked = await auth.new_session()
        _, other = await auth.new_session()
        await set_active(auth, admin, victim.id, False)
        await seconds_until_refused(api, revoked.access_token)

        await auth.running.stop(0)  # the auth server is gone
        failures = "mediadl_download_revocation_poll_failures_total"
        registry = api.running.metrics.registry
        started = time.monotonic()
        while not registry.get_sample_value(failures):
            assert time.monotonic() - started < DEADLINE_SECONDS
            await asyncio.sleep(0.1)
        # Still serving, with the last list: the other user works, the revoked one stays refused.
        assert await outcome(api, other.access_token) == "OK"
        assert await outcome(api, revoked.access_token) == "CREDENTIALS_REVOKED"
        assert (registry.get_sample_value("mediadl_download_revocations_age_seconds") or 0) > 0
        warnings = [r.getMessage() for r in caplog.records if "keeping the last list" in r.getMessage()]
        assert len(warnings) == 1 and "UNAVAILABLE" in warnings[0]
