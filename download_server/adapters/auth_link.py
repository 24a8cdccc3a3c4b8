"""What the download server takes from the auth server: verification keys (EdDSA/RS256) and revocations."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry

from download_server.adapters.jwks import auth_server_jwks, jwks_file, start_key_refresh
from download_server.adapters.revocations import RevocationPoller, start_revocation_poll
from download_server.config import DownloadSettings
from mediadl_common import tls
from mediadl_common.config import ConfigError
from mediadl_common.keys import KeySource, VerificationKeys
from mediadl_common.revocations import RevocationList

log = logging.getLogger(__name__)


def build_verification_keys(settings: DownloadSettings) -> VerificationKeys | None:
    """The public keys tokens are checked with: none for HS* (the shared secret checks them), else those of
    JWT_PUBLIC_KEYS_FILE or GetJwks.

    A token naming a kid we do not know re-reads the source (rate-limited by VerificationKeys), so a key
    rotation needs no restart. The server never holds a private key.
    """
    jwt = settings.jwt
    if not jwt.asymmetric:
        return None
    return VerificationKeys(
        settings.public_keys, key_source(settings), min_refresh_interval=jwt.jwks_min_refresh_seconds
    )


def key_source(settings: DownloadSettings) -> KeySource:
    """Where the public keys are read again: the JWKS file if there is one, else the auth server's GetJwks."""
    jwt = settings.jwt
    if jwt.public_keys_file is not None:
        return jwks_file(jwt.public_keys_file, jwt.algorithm)
    if settings.jwks_auth_addr is not None:
        return auth_server_jwks(settings.jwks_auth_addr, jwt.algorithm, client_tls=settings.client_tls)
    raise ConfigError(f"JWT_ALGORITHM={jwt.algorithm} needs JWT_PUBLIC_KEYS_FILE or AUTH_GRPC_ADDR")


async def start_keys_refresh(
    settings: DownloadSettings, keys: VerificationKeys | None
) -> list[Callable[[], Awaitable[None]]]:
    """With GetJwks as the source: fetch the keys now and every JWT_JWKS_REFRESH_SECONDS, so a removed key stops
    verifying without a restart. Returns the hooks that stop it (none in the other modes)."""
    if settings.jwks_auth_addr is None or keys is None:
        return []
    return [await start_key_refresh(keys, settings.jwt.jwks_refresh_seconds)]


async def start_revocations(
    settings: DownloadSettings, revocations: RevocationList, registry: CollectorRegistry
) -> list[Callable[[], Awaitable[None]]]:
    """Poll the auth server's ListRevocations every DOWNLOAD_REVOCATION_POLL_SECONDS (with AUTH_SERVICE_TOKEN)."""
    if settings.service_token is None:
        log.warning("AUTH_SERVICE_TOKEN is not set: revocation polling is off (revoked tokens work until they expire)")
        return []
    poller = RevocationPoller(
        lambda: tls.channel(settings.auth_addr, settings.client_tls),
        settings.service_token,
        revocations,
        registry,
        interval=settings.revocation_poll_seconds,
    )
    return [await start_revocation_poll(poller)]
