"""Start the download server in-process on port 0, mint tokens for it, and read rich error statuses."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import grpc
from aiohttp.abc import AbstractResolver, ResolveResult

from auth_server.adapters.tokens import JwtIssuer
from download_server.adapters.store import SqlTaskStore
from download_server.adapters.unit_of_work import SqlTransactions
from download_server.bootstrap import start_download_server
from download_server.config import DownloadSettings
from download_server.engine.http.guard import UrlGuard
from download_server.engine.http.url_policy import Resolver
from download_server.engine.settings import EngineSettings
from mediadl.download.v1 import download_pb2 as pb
from mediadl.download.v1 import download_pb2_grpc
from mediadl_common.config import Env
from mediadl_common.db import Database
from mediadl_common.server import RunningServer

# Re-exported: the download tests import them from here.
from tests.support.status import RpcFailure as RpcFailure
from tests.support.status import rpc_failure as rpc_failure
from tests.support.status import status_of as status_of
from tests.support.status import stream_failure as stream_failure

SECRET = "download-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789"
# What the fake resolver answers: the API never touches real DNS in tests.
DNS = {
    "cdn.example.com": ["93.184.216.34", "2606:2800:220:1::1"],
    "live.example.com": ["93.184.216.35"],
    "internal.example.com": ["10.0.0.5"],
    "rebind.example.com": ["93.184.216.34", "127.0.0.1"],
}
HLS_URL = "https://cdn.example.com/live/index.m3u8"
ROOM_URL = "https://live.example.com/room-1"


async def fake_resolve(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise OSError(f"unknown host {host}")
    return DNS[host]


class UnansweredResolver(AbstractResolver):
    """aiohttp's lookups for connections never answer: a download of a made-up CDN URL stays in flight
    (PROCESSING) without any packet leaving the machine, until the server stops it."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        return None


def download_settings(database_url: str, storage_dir: Path, **overrides: str) -> DownloadSettings:
    env = {
        "JWT_SECRET_KEY": SECRET,
        "DOWNLOAD_DATABASE_URL": database_url,
        "DOWNLOAD_GRPC_ADDR": "127.0.0.1:0",
        "STORAGE_DIR": str(storage_dir),
        "DOWNLOAD_DB_POOL_SIZE": "4",
        "DOWNLOAD_SHUTDOWN_GRACE_SECONDS": "0",
        **overrides,
    }
    return DownloadSettings.from_env(Env(env))


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class DownloadApi:
    """A running server, a stub on it, tokens for any user, and a direct store for setting up and checking."""

    running: RunningServer
    settings: DownloadSettings
    stub: Any  # download_pb2_grpc.DownloadServiceStub (the generated module is untyped)
    channel: grpc.aio.Channel
    store: SqlTaskStore
    transactions: SqlTransactions

    @cached_property
    def issuer(self) -> JwtIssuer:
        """Signs like the auth server with the shared secret (EdDSA tests sign with a key of their own)."""
        return JwtIssuer(self.settings.jwt)

    def auth(self, user_id: str) -> tuple[tuple[str, str]]:
        """Call metadata carrying a fresh access token for `user_id`."""
        token, _ = self.issuer.issue(sub=user_id, type="access", ttl_seconds=300)
        return (("authorization", f"Bearer {token}"),)

    async def create_task(self, user_id: str, **fields: Any) -> pb.Task:
        values: dict[str, Any] = {
            "video_id": new_id(),
            "liveroom_id": "room-1",
            "liveroom_title": "Evening show",
            "liveroom_url": ROOM_URL,
            "resource_url": HLS_URL,
            "resource_type": pb.RESOURCE_TYPE_HLS,
        }
        values.update(fields)
        response = await self.stub.CreateTask(pb.CreateTaskRequest(**values), metadata=self.auth(user_id))
        task: pb.Task = response.task
        return task


@asynccontextmanager
async def running_download_server(
    settings: DownloadSettings,
    *,
    engine: EngineSettings | None = None,
    resolve: Resolver = fake_resolve,
    resolver: AbstractResolver | None = None,
    guard: UrlGuard | None = None,
) -> AsyncIterator[DownloadApi]:
    """The server with a fake policy resolver (`resolve`); downloads reach nothing unless `resolver` (or a
    loopback origin with DOWNLOAD_ALLOW_PRIVATE_NETWORKS=true) says otherwise."""
    running = await start_download_server(
        settings, engine=engine, resolve=resolve, resolver=resolver or UnansweredResolver(), guard=guard
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    database = Database(settings.database_url, pool_size=2)
    try:
        stub = download_pb2_grpc.DownloadServiceStub(channel)  # type: ignore[no-untyped-call]
        transactions = SqlTransactions(database)
        yield DownloadApi(running, settings, stub, channel, SqlTaskStore(transactions), transactions)
    finally:
        await channel.close()
        await running.stop(0)
        database.close()
