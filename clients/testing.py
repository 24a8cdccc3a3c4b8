"""Start both mediadl servers in-process for your own tests: port 0, temporary SQLite, temporary storage.

>>> from clients.testing import mediadl_servers
>>> async def test_my_integration(tmp_path):
...     async with mediadl_servers(tmp_path) as servers:
...         client = await servers.logged_in_client()     # a fresh user, registered and logged in
...         task = await client.create_task(video_id=str(uuid.uuid4()), liveroom_id="r1",
...             resource_url="https://example.com/a.mp4", resource_type=ResourceType.MP4)
...         assert (await client.get_task(task.id)).status is TaskStatus.PENDING

Clients made by the servers object are closed, and the servers stopped, when the block ends.
Private-network URLs are allowed by default so a test can download from a local HTTP server.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clients.aio import AsyncClient, connect
from clients.tokens import MemoryTokenStore, TokenStore

TEST_PASSWORD = "test password 123"


@dataclass
class MediadlServers:
    """Both running servers, and factories for clients connected to them."""

    auth_addr: str
    download_addr: str
    storage_dir: Path
    jwt_secret: str = field(repr=False)
    _clients: list[AsyncClient] = field(default_factory=list, repr=False)

    async def client(self, *, tokens: TokenStore | None = None, **connect_options: Any) -> AsyncClient:
        """A client connected to both servers, not logged in (options as for :func:`clients.connect`)."""
        client = await connect(
            self.auth_addr, self.download_addr, tokens=tokens or MemoryTokenStore(), **connect_options
        )
        self._clients.append(client)
        return client

    async def logged_in_client(
        self, *, username: str | None = None, password: str = TEST_PASSWORD, **connect_options: Any
    ) -> AsyncClient:
        """A new user (``<username>@example.com``), registered and logged in; its id is ``await c.whoami()``."""
        name = username or f"user_{uuid.uuid4().hex[:10]}"
        client = await self.client(**connect_options)
        await client.register(email=f"{name}@example.com", username=name, password=password)
        await client.login(f"{name}@example.com", password)
        return client

    def issue_access_token(self, user_id: str, *, ttl_seconds: int) -> str:
        """An access token signed like the auth server's; a negative ttl gives an already expired one."""
        from auth_server.adapters.tokens import JwtIssuer
        from mediadl_common.config import JwtSettings

        token, _ = JwtIssuer(JwtSettings(secret_key=self.jwt_secret)).issue(
            sub=user_id, type="access", ttl_seconds=ttl_seconds
        )
        return token


@contextlib.asynccontextmanager
async def mediadl_servers(
    directory: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    auth_database_url: str | None = None,
    download_database_url: str | None = None,
) -> AsyncIterator[MediadlServers]:
    """Run the auth and download servers until the block ends.

    Args:
        directory: where databases and storage go; a temporary directory (removed afterwards) by default.
        env: extra settings for both servers (names as in API.md), e.g. ``{"DOWNLOAD_MAX_ACTIVE_TASKS": "1"}``.
        auth_database_url, download_database_url: use these databases instead of SQLite files
            (they must be two different, empty or migrated databases).
    """
    # The servers are imported here so that `import clients` never needs the server packages.
    from auth_server.bootstrap import start_auth_server
    from auth_server.config import AuthSettings
    from download_server.bootstrap import start_download_server
    from download_server.config import DownloadSettings
    from mediadl_common.config import Env

    async with contextlib.AsyncExitStack() as stack:
        if directory is None:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="mediadl-test-"))
        root = Path(directory)
        secret = secrets.token_urlsafe(48)
        # The download server polls the auth server's ListRevocations with this, as `make run` sets it up.
        common = {"JWT_SECRET_KEY": secret, "AUTH_SERVICE_TOKEN": secrets.token_urlsafe(32), **(env or {})}
        auth_env = {
            "AUTH_GRPC_ADDR": "127.0.0.1:0",
            "AUTH_DATABASE_URL": auth_database_url or f"sqlite:///{root / 'auth.db'}",
            "AUTH_BCRYPT_ROUNDS": "4",  # bcrypt's minimum: tests stay fast; production keeps 12
            "AUTH_SHUTDOWN_GRACE_SECONDS": "0",
            **common,
        }
        auth = await start_auth_server(AuthSettings.from_env(Env(auth_env)), migrate=True)
        stack.push_async_callback(auth.stop, 0)
        download_env = {
            "DOWNLOAD_GRPC_ADDR": "127.0.0.1:0",
            "AUTH_GRPC_ADDR": f"127.0.0.1:{auth.port}",
            "DOWNLOAD_DATABASE_URL": download_database_url or f"sqlite:///{root / 'download.db'}",
            "STORAGE_DIR": str(root / "storage"),
            "DOWNLOAD_ALLOW_PRIVATE_NETWORKS": "true",
            "DOWNLOAD_SHUTDOWN_GRACE_SECONDS": "0",
            **common,
        }
        download_settings = DownloadSettings.from_env(Env(download_env))
        download = await start_download_server(download_settings, migrate=True)
        stack.push_async_callback(download.stop, 0)
        servers = MediadlServers(
            auth_addr=f"127.0.0.1:{auth.port}",
            download_addr=f"127.0.0.1:{download.port}",
            storage_dir=download_settings.storage_dir,
            jwt_secret=secret,
        )
        try:
            yield servers
        finally:
            for client in servers._clients:
                await client.close()
