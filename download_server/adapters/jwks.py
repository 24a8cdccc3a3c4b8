"""Where the download server's verification keys come from: the auth server's GetJwks or a JWKS file."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from google.protobuf.json_format import MessageToDict

from mediadl.auth.v1 import auth_pb2, auth_pb2_grpc
from mediadl_common.keys import KeySource, PublicKey, VerificationKeys, load_jwks_file, parse_jwks
from mediadl_common.tls import ClientTls
from mediadl_common.tls import channel as tls_channel

log = logging.getLogger(__name__)

# Until the first keys arrive (the auth server may start after us), try again this often.
FIRST_FETCH_RETRY_SECONDS = 2.0


class NoKeysPublished(Exception):
    """The source answered with an empty key set."""


def _not_empty(keys: Mapping[str, PublicKey], where: str) -> Mapping[str, PublicKey]:
    # An empty set (an auth server in HS256 mode, a rotation gone wrong) would refuse every token: treat it
    # as a failed fetch, so the keys already known stay, as they do while the source is down.
    if not keys:
        raise NoKeysPublished(f"{where} published no verification key")
    return keys


def auth_server_jwks(
    address: str, algorithm: str, timeout: float = 5.0, *, client_tls: ClientTls | None = None
) -> KeySource:
    """A key source that calls AuthService.GetJwks at `address` (over TLS with `client_tls`)."""

    async def fetch() -> Mapping[str, PublicKey]:
        # A channel per fetch (minutes apart): it reads the TLS files anew, so rotated ones are used.
        async with tls_channel(address, client_tls) as channel:
            reply = await auth_pb2_grpc.AuthServiceStub(channel).GetJwks(auth_pb2.GetJwksRequest(), timeout=timeout)
        document = {"keys": [MessageToDict(key, preserving_proto_field_name=True) for key in reply.keys]}
        return _not_empty(parse_jwks(document, algorithm), f"the auth server at {address}")

    return fetch


def jwks_file(path: str | Path, algorithm: str) -> KeySource:
    """A key source that re-reads the JWKS file at `path` (off the event loop)."""

    async def reload() -> Mapping[str, PublicKey]:
        return _not_empty(await asyncio.to_thread(load_jwks_file, path, algorithm), f"the JWKS file {path}")

    return reload


async def keep_fresh(keys: VerificationKeys, interval: float) -> None:
    """Refresh every `interval` seconds (sooner while no key is known); runs until cancelled."""
    while True:
        await asyncio.sleep(FIRST_FETCH_RETRY_SECONDS if not keys.kids else interval)
        await keys.refresh()


async def start_key_refresh(keys: VerificationKeys, interval: float) -> Callable[[], Awaitable[None]]:
    """Fetch once now, keep refreshing in the background; returns the coroutine function that stops it."""
    if not await keys.refresh() or not keys.kids:
        log.warning("no verification keys from the auth server yet: tokens are refused until they arrive")
    task = asyncio.create_task(keep_fresh(keys, interval), name="jwks-refresh")

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return stop
