"""Name resolution for tests: fixed answers for made-up host names, so policy cases need no real DNS."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

from aiohttp.abc import AbstractResolver, ResolveResult


class StaticResolver(AbstractResolver):
    """An aiohttp resolver answering from a dict (host -> addresses); unknown names fail like NXDOMAIN."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"no such host {host}")
        return [
            ResolveResult(hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=0)
            for address in self.answers[host]
        ]

    async def close(self) -> None:
        return None


def static_resolve(answers: dict[str, list[str]]) -> Callable[[str, int], Awaitable[list[str]]]:
    """The url_policy `resolve` hook with fixed answers."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"no such host {host}")
        return list(answers[host])

    return resolve
