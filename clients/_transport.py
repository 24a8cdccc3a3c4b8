"""Channels, deadlines, the UNAVAILABLE retry policy, bearer metadata and refresh-on-expiry for every call."""

# ruff: noqa: ASYNC109  -- `timeout` is the gRPC deadline passed to the call, grpc's own name for it

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from clients._session import Session
from clients.errors import CREDENTIALS_EXPIRED, AuthenticationError, MediadlError, from_rpc_error
from clients.tokens import Tokens, TokenStore
from mediadl.auth.v1 import auth_pb2, auth_pb2_grpc
from mediadl.download.v1 import download_pb2_grpc

log = logging.getLogger(__name__)

AUTH_SERVICE = "mediadl.auth.v1.AuthService"
DOWNLOAD_SERVICE = "mediadl.download.v1.DownloadService"
USER_AGENT = "mediadl-client/0.1"


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC's own retries for UNAVAILABLE (server restarting, connection refused), with exponential backoff.

    >>> RetryPolicy(max_attempts=5, initial_backoff=0.1)  # pass as connect(..., retry=...)
    RetryPolicy(max_attempts=5, initial_backoff=0.1, max_backoff=2.0, backoff_multiplier=2.0)
    """

    max_attempts: int = 4
    initial_backoff: float = 0.2
    max_backoff: float = 2.0
    backoff_multiplier: float = 2.0

    def service_config(self) -> str:
        """The channel's "grpc.service_config" JSON: this policy for every method of both services."""
        policy = {
            # gRPC caps maxAttempts at 5 and needs at least 2; the first attempt counts.
            "maxAttempts": max(2, min(self.max_attempts, 5)),
            "initialBackoff": f"{self.initial_backoff:.3f}s",
            "maxBackoff": f"{self.max_backoff:.3f}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
        names = [{"service": AUTH_SERVICE}, {"service": DOWNLOAD_SERVICE}]
        return json.dumps({"methodConfig": [{"name": names, "retryPolicy": policy}]})


def make_channel(
    address: str,
    *,
    retry: RetryPolicy | None,
    credentials: grpc.ChannelCredentials | None = None,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    options: list[tuple[str, Any]] = [("grpc.primary_user_agent", USER_AGENT)]
    if retry is not None and retry.max_attempts > 1:
        options += [("grpc.enable_retries", 1), ("grpc.service_config", retry.service_config())]
    else:
        options.append(("grpc.enable_retries", 0))
    if credentials is not None:
        return grpc.aio.secure_channel(address, credentials, options=options, interceptors=list(interceptors) or None)
    return grpc.aio.insecure_channel(address, options=options, interceptors=list(interceptors) or None)


def tokens_from(response: Any) -> Tokens:
    """A Login or RefreshToken response as a token pair."""
    return Tokens(
        access_token=response.access_token,
        refresh_token=response.refresh_token,
        token_type=response.token_type or "Bearer",
        expires_at=time.time() + response.expires_in if response.expires_in > 0 else None,
    )


class Transport:
    """Both channels and stubs; each call gets a deadline, a bearer token, one mapped error and one refresh."""

    def __init__(
        self,
        auth_channel: grpc.aio.Channel,
        download_channel: grpc.aio.Channel,
        store: TokenStore,
        *,
        timeout: float,
        stream_timeout: float | None,
    ) -> None:
        self._channels = (auth_channel, download_channel)
        self.auth = auth_pb2_grpc.AuthServiceStub(auth_channel)  # type: ignore[no-untyped-call]
        self.download = download_pb2_grpc.DownloadServiceStub(download_channel)  # type: ignore[no-untyped-call]
        self.session = Session(store, self._rotate)
        self.timeout = timeout
        self.stream_timeout = stream_timeout

    async def _rotate(self, refresh_token: str) -> Tokens:
        response = await self.unary(
            self.auth.RefreshToken, auth_pb2.RefreshTokenRequest(refresh_token=refresh_token), authenticated=False
        )
        return tokens_from(response)

    async def unary(
        self,
        rpc: Any,
        request: Any,
        *,
        timeout: float | None = None,
        authenticated: bool = True,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> Any:
        """Call a unary RPC; with `authenticated`, refresh once on CREDENTIALS_EXPIRED and call again.

        `extra` metadata goes along unchanged (the dashboard's `x-forwarded-for`).
        """
        deadline = self.timeout if timeout is None else timeout
        token = self.session.access_token() if authenticated else None
        try:
            return await rpc(request, timeout=deadline, metadata=(*(_metadata(token) or ()), *extra) or None)
        except grpc.RpcError as exc:
            error = from_rpc_error(exc)
            if token is None or not _expired(error):
                raise error from None
        token = await self.session.refresh(token)
        try:
            return await rpc(request, timeout=deadline, metadata=_metadata(token))
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def stream(self, rpc: Any, request: Any, *, timeout: float | None = None) -> AsyncGenerator[Any, None]:
        """Iterate a server stream; an expired token refused before the first message is refreshed once."""
        deadline = self.stream_timeout if timeout is None else timeout
        token = self.session.access_token()
        refreshed = False
        while True:
            call = rpc(request, timeout=deadline, metadata=_metadata(token))
            received = False
            try:
                async for response in call:
                    received = True
                    yield response
                return
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
                if received or refreshed or not _expired(error):
                    raise error from None
            finally:
                # Leaving early (break, aclose, cancellation) must end the RPC, not leave it open on the server.
                call.cancel()
            refreshed = True
            token = await self.session.refresh(token)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


def _metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    return (("authorization", f"Bearer {token}"),) if token else None


def _expired(error: MediadlError) -> bool:
    return isinstance(error, AuthenticationError) and error.reason == CREDENTIALS_EXPIRED
