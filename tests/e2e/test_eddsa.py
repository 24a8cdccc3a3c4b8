"""EdDSA end to end: the auth server signs, the download server verifies with keys from GetJwks alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import grpc
import jwt
from prometheus_client.parser import text_string_to_metric_families

from mediadl.download.v1 import download_pb2 as pb
from mediadl_common.errors import CREDENTIALS_INVALID
from mediadl_common.keys import generate_ed25519_pem
from mediadl_common.server import RunningServer
from tests.auth.helpers import auth_settings, bearer, running_auth_server
from tests.download.api import DownloadApi, download_settings, rpc_failure, running_download_server
from tests.support.net import free_port

GET_JWKS = "/mediadl.auth.v1.AuthService/GetJwks"
EDDSA = {"JWT_ALGORITHM": "EdDSA"}


def get_jwks_calls(running: RunningServer) -> int:
    families = text_string_to_metric_families(running.metrics.render().decode())
    return int(
        sum(
            s.value
            for family in families
            for s in family.samples
            if s.name == "mediadl_rpc_requests_total" and s.labels["method"] == GET_JWKS
        )
    )


async def accepted(api: DownloadApi, token: str) -> bool:
    try:
        await api.stub.ListTasks(pb.ListTasksRequest(), metadata=bearer(token))
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        return False
    return True


async def test_no_private_key_on_the_download_server_and_the_unknown_kid_flood(
    make_database_url: Callable[[str], str], tmp_path: Path
) -> None:
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(generate_ed25519_pem())
    env = {**EDDSA, "JWT_JWKS_MIN_REFRESH_SECONDS": "3600"}
    async with running_auth_server(
        auth_settings(make_database_url("sqlite"), JWT_PRIVATE_KEY_FILE=str(key_file), **env)
    ) as auth:
        # No JWT_PRIVATE_KEY_FILE and no keys file: only where the auth server is.
        settings = download_settings(
            make_database_url("sqlite"), tmp_path / "storage", AUTH_GRPC_ADDR=f"127.0.0.1:{auth.running.port}", **env
        )
        assert settings.jwt.private_key_file is None and settings.jwt.public_keys_file is None
        async with running_download_server(settings) as api:
            _, session = await auth.new_session()
            assert await accepted(api, session.access_token)
            calls_after_start = get_jwks_calls(auth.running)
            assert calls_after_start == 1

            forged_key = generate_ed25519_pem()
            for i in range(50):
                forged = jwt.encode({"sub": "x"}, forged_key, algorithm="EdDSA", headers={"kid": f"forged-{i}"})
                refused = await rpc_failure(api.stub.ListTasks(pb.ListTasksRequest(), metadata=bearer(forged)))
                assert (refused.code, refused.reason) == (grpc.StatusCode.UNAUTHENTICATED, CREDENTIALS_INVALID)
            # 50 unknown kids within the interval: no GetJwks call beyond the start-up one.
            assert get_jwks_calls(auth.running) == calls_after_start


async def test_key_rotation_without_restarting_the_download_server(
    make_database_url: Callable[[str], str], tmp_path: Path
) -> None:
    old_pem, new_pem = generate_ed25519_pem(), generate_ed25519_pem()
    key_file = tmp_path / "signing.pem"
    auth_db = make_database_url("sqlite")
    auth_addr = f"127.0.0.1:{free_port()}"
    env = {**EDDSA, "JWT_JWKS_MIN_REFRESH_SECONDS": "0", "JWT_JWKS_REFRESH_SECONDS": "1"}

    def auth_with(*pems: bytes):  # type: ignore[no-untyped-def]
        key_file.write_bytes(b"".join(pems))
        return running_auth_server(
            auth_settings(auth_db, JWT_PRIVATE_KEY_FILE=str(key_file), AUTH_GRPC_ADDR=auth_addr, **env)
        )

    settings = download_settings(make_database_url("sqlite"), tmp_path / "storage", AUTH_GRPC_ADDR=auth_addr, **env)
    async with auth_with(old_pem) as auth:
        _, old_session = await auth.new_session()
        async with running_download_server(settings) as api:
            assert await accepted(api, old_session.access_token)
            await auth.running.stop(0)  # restarted below with the new key appended

            # Step 1: the new key signs; the old one stays published while its tokens live.
            async with auth_with(old_pem, new_pem) as rotated:
                _, new_session = await rotated.new_session()
                assert (
                    jwt.get_unverified_header(new_session.access_token)["kid"]
                    != jwt.get_unverified_header(old_session.access_token)["kid"]
                )
                assert await accepted(api, new_session.access_token)  # an unknown kid triggers a refresh
                assert await accepted(api, old_session.access_token)

            # Step 2: the old key is removed; the download server's periodic refresh drops it.
            async with auth_with(new_pem):
                for _ in range(100):
                    if not await accepted(api, old_session.access_token):
                        break
                    await asyncio.sleep(0.1)
                assert not await accepted(api, old_session.access_token)
                assert await accepted(api, new_session.access_token)
