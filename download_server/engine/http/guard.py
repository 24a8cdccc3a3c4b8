"""The URL policy as the fetcher applies it: every hop checked, and only checked addresses ever dialled."""

from __future__ import annotations

import ipaddress
import socket
from typing import Protocol

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from download_server.engine.http.url_policy import Resolver, check_url, is_public_ip


class UrlGuard(Protocol):
    """What the fetcher asks before each request and before each connection."""

    async def check(self, url: str) -> None:
        """Raise domain.urls.UrlRefused for a URL that must not be fetched."""
        ...

    def address_allowed(self, address: str) -> bool:
        """May the connector dial this resolved address?"""
        ...


class PolicyGuard:
    """The real guard: url_policy's rules, relaxed only by DOWNLOAD_ALLOW_PRIVATE_NETWORKS."""

    def __init__(self, *, allow_private: bool, resolve: Resolver | None = None) -> None:
        self.allow_private = allow_private
        self._resolve = resolve

    async def check(self, url: str) -> None:
        await check_url(url, allow_private=self.allow_private, resolve=self._resolve)

    def address_allowed(self, address: str) -> bool:
        if self.allow_private:
            return True
        try:
            return is_public_ip(ipaddress.ip_address(address.split("%", 1)[0]))
        except ValueError:
            return False


class AddressRefused(OSError):
    """Raised inside the connector; aiohttp wraps it in ClientConnectorDNSError, the fetcher unwraps it."""


class GuardedResolver(AbstractResolver):
    """Resolves like `inner`, then drops every address the guard refuses.

    check() resolved the host once already; resolving again here and filtering is what stops DNS
    rebinding (a name that answers public for the check and private for the connection).
    """

    def __init__(self, guard: UrlGuard, inner: AbstractResolver | None = None) -> None:
        self._guard = guard
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [result for result in results if self._guard.address_allowed(result["host"])]
        if not allowed:
            raise AddressRefused(f"{host} resolves only to loopback, private or otherwise non-public addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()
