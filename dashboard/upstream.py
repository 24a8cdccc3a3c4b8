"""Upstream: how the dashboard reaches the gRPC servers; each browser session gets its own client from it."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from aiohttp import web

from clients import AsyncClient, connect


@dataclass(frozen=True)
class Upstream:
    """The auth and download server addresses, and the deadline for each unary call."""

    auth_addr: str
    download_addr: str
    timeout: float = 10.0
    # TLS to the servers (TLS_CA_FILE, TLS_CLIENT_CERT_FILE/_KEY_FILE); None: plaintext.
    credentials: grpc.ChannelCredentials | None = None

    async def connect(self) -> AsyncClient:
        """A new client with its own in-memory token store (one per browser session: tokens never mix).

        gRPC pools subchannels process-wide, so channels to the same address with the same options share one
        connection: a client per session costs little.
        """
        return await connect(self.auth_addr, self.download_addr, timeout=self.timeout, credentials=self.credentials)


UPSTREAM = web.AppKey("upstream", Upstream)
