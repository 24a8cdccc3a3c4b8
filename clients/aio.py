"""The async mediadl client: ``connect()`` and :class:`AsyncClient`, one object for both services.

>>> import asyncio, uuid
>>> from clients import connect, ResourceType
>>> async def main() -> None:
...     async with await connect("127.0.0.1:50051", "127.0.0.1:50052") as client:
...         await client.login("ada@example.com", "correct horse")
...         task = await client.create_task(video_id=str(uuid.uuid4()), liveroom_id="room1",
...             resource_url="https://cdn.example.com/live/index.m3u8", resource_type=ResourceType.HLS)
...         async for event in client.start(task.id):
...             print(f"{event.status} {event.progress:.0%}")
>>> asyncio.run(main())  # doctest: +SKIP
"""
# ruff: noqa: ASYNC109  -- `timeout` is the gRPC deadline passed to the call, grpc's own name for it

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

import grpc

from clients._admin_api import AdminApi
from clients._auth_api import AuthApi
from clients._records_api import RecordsApi
from clients._tasks_api import TasksApi
from clients._transport import RetryPolicy, Transport, make_channel
from clients._video_files_api import VideoFilesApi
from clients.tokens import MemoryTokenStore, TokenStore

DEFAULT_AUTH_ADDR = "127.0.0.1:50051"
DEFAULT_DOWNLOAD_ADDR = "127.0.0.1:50052"
DEFAULT_TIMEOUT = 10.0


class AsyncClient(AuthApi, AdminApi, TasksApi, RecordsApi, VideoFilesApi):
    """Typed access to AuthService and DownloadService; returns the client's dataclasses, raises
    :mod:`clients.errors`. Create it with :func:`connect`; close it (or use ``async with``) when done.

    Every method takes ``timeout=`` (seconds) to override the client's default deadline for that call.
    When an access token has expired the client refreshes it once (single-flight across concurrent calls)
    and repeats the call.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    @property
    def tokens(self) -> TokenStore:
        """The token store this client reads and writes."""
        return self._transport.session.store

    async def close(self) -> None:
        """Close both channels; open streams end. Idempotent."""
        await self._transport.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def connect(
    auth_addr: str = DEFAULT_AUTH_ADDR,
    download_addr: str = DEFAULT_DOWNLOAD_ADDR,
    *,
    tokens: TokenStore | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    stream_timeout: float | None = None,
    retry: RetryPolicy | None = RetryPolicy(),
    credentials: grpc.ChannelCredentials | None = None,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> AsyncClient:
    """Open channels to both services. Nothing is sent until the first call (a server that is down shows up
    then, as UnavailableError, after the retry policy's attempts).

    Args:
        tokens: where the token pair lives; a fresh :class:`MemoryTokenStore` by default.
        timeout: deadline in seconds for each unary call (override per call with ``timeout=``).
        stream_timeout: deadline for progress streams; None (default) lets them run as long as needed.
        retry: gRPC retry policy for UNAVAILABLE; None disables retries.
        credentials: TLS channel credentials; plaintext when None.
        interceptors: grpc.aio client interceptors added to both channels (tracing, metrics).

    >>> client = await connect("auth.internal:50051", "download.internal:50052", timeout=5)
    >>> try:
    ...     me = await client.login("ada@example.com", "correct horse")
    ... finally:
    ...     await client.close()
    """
    auth_channel = make_channel(auth_addr, retry=retry, credentials=credentials, interceptors=interceptors)
    download_channel = make_channel(download_addr, retry=retry, credentials=credentials, interceptors=interceptors)
    transport = Transport(
        auth_channel,
        download_channel,
        tokens if tokens is not None else MemoryTokenStore(),
        timeout=timeout,
        stream_timeout=stream_timeout,
    )
    return AsyncClient(transport)
