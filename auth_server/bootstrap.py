"""Composition root: wires settings into database, services, servicer and interceptors, and starts serving.

Tests and `python -m auth_server` call the same start_auth_server(), so what is tested is what runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
from prometheus_client import Counter, Gauge

from auth_server.adapters.hashing import HashingPool
from auth_server.adapters.passwords import BcryptHasher
from auth_server.adapters.tokens import JwtIssuer
from auth_server.adapters.unit_of_work import SqlUnitOfWork
from auth_server.adapters.user_reads import SqlUserReads
from auth_server.config import AuthSettings
from auth_server.domain.tokens import Jwk, TokenLifetimes
from auth_server.grpc.servicer import PUBLIC_METHODS, SERVICE_NAME, AuthServicer
from auth_server.migrations import SCRIPT_LOCATION
from auth_server.revocation_feed import local_revocations, start_revocation_feed
from auth_server.services import AuthService
from auth_server.services.common import OnRevoked, ignore_revocation
from auth_server.throttle import LoginThrottle
from mediadl.auth.v1 import auth_pb2_grpc
from mediadl_common.auth_interceptor import AuthInterceptor
from mediadl_common.db import Database, database_unavailable, describe_url, run_migrations
from mediadl_common.interceptors import ErrorBoundaryInterceptor
from mediadl_common.keys import VerificationKeys, to_jwk
from mediadl_common.metrics import Metrics
from mediadl_common.revocations import RevocationList
from mediadl_common.server import RunningServer, start_server
from mediadl_common.tokens import TokenVerifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthTokens:
    """What the auth server signs tokens with, checks them with, and publishes for other verifiers."""

    issuer: JwtIssuer
    verifier: TokenVerifier
    jwks: list[Jwk]


def build_tokens(settings: AuthSettings) -> AuthTokens:
    """The issuer, the verifier and the public keys GetJwks publishes (none with HMAC: that key is secret).

    The verifier refuses revoked access tokens from its in-memory RevocationList (fed by revocation_feed).
    """
    revocations = RevocationList()
    if not settings.jwt.asymmetric:
        return AuthTokens(JwtIssuer(settings.jwt), TokenVerifier(settings.jwt, revocations=revocations), [])
    keys = settings.signing_keys
    # The newest key signs; older ones stay published so tokens they signed verify until they expire.
    verification = VerificationKeys({key.kid: key.public_key for key in keys})
    return AuthTokens(
        JwtIssuer(settings.jwt, signing_key=keys[-1]),
        TokenVerifier(settings.jwt, verification, revocations=revocations),
        [Jwk(**to_jwk(key.public_key, key.kid)) for key in keys],
    )


def build_interceptors(tokens: AuthTokens) -> list[grpc.aio.ServerInterceptor]:
    """The error boundary (a lost database is UNAVAILABLE), then the access-token check of non-public methods."""
    return [
        ErrorBoundaryInterceptor(translators=[database_unavailable]),
        AuthInterceptor.for_services(tokens.verifier, [SERVICE_NAME], public_methods=PUBLIC_METHODS),
    ]


def build_throttle(
    settings: AuthSettings, metrics: Metrics, clock: Callable[[], float] = time.monotonic
) -> LoginThrottle:
    """The brute-force throttle, counting its refusals (by scope) and tracked keys in the server's registry."""
    refused = Counter(
        "mediadl_auth_login_throttled",
        "Login and Register attempts refused by the brute-force throttle, by scope (pair, peer, account, register)",
        ["scope"],
        registry=metrics.registry,
    )
    throttle = LoginThrottle(settings.login_throttle, clock=clock, observe=lambda scope: refused.labels(scope).inc())
    tracked = Gauge(
        "mediadl_auth_login_throttle_keys",
        "Accounts and clients with recent failed logins held in memory",
        registry=metrics.registry,
    )
    tracked.set_function(throttle.tracked_keys)
    return throttle


def build_service(
    settings: AuthSettings,
    database: Database,
    hasher: BcryptHasher,
    tokens: AuthTokens,
    throttle: LoginThrottle | None = None,
    hashing: HashingPool | None = None,
    on_revoked: OnRevoked = ignore_revocation,
) -> AuthService:
    return AuthService(
        runner=database,
        uow=lambda: SqlUnitOfWork(database.session_factory),
        hasher=hasher,
        issuer=tokens.issuer,
        verifier=tokens.verifier,
        lifetimes=TokenLifetimes(settings.access_token_ttl_seconds, settings.refresh_token_ttl_seconds),
        jwks=tokens.jwks,
        throttle=throttle,
        hashing=hashing,
        page_secret=settings.jwt.secret_key,
        service_token=settings.service_token,
        on_revoked=on_revoked,
        reads=SqlUserReads(database),
    )


async def start_auth_server(
    settings: AuthSettings, *, migrate: bool = True, throttle_clock: Callable[[], float] = time.monotonic
) -> RunningServer:
    """Open the database (migrating it unless told not to), ensure the first superuser, then serve.

    `throttle_clock` (monotonic seconds) lets tests move the login throttle's time without waiting.
    """
    metrics = Metrics()
    database = Database(settings.database_url, pool_size=settings.db_pool_size)
    hashing = HashingPool(settings.hash_workers, settings.hash_queue)
    stop_feed: Callable[[], Awaitable[None]] | None = None
    try:
        if migrate:
            await database.run(run_migrations, settings.database_url, SCRIPT_LOCATION)
        # The hasher computes its dummy hash at our cost factor: bcrypt, so not on the event loop.
        hasher = await hashing.run(BcryptHasher, settings.bcrypt_rounds)
        tokens = build_tokens(settings)
        throttle = build_throttle(settings, metrics, throttle_clock)
        revocations = tokens.verifier.revocations
        assert revocations is not None  # build_tokens always gives the verifier a list
        on_revoked = local_revocations(revocations, asyncio.get_running_loop())
        service = build_service(settings, database, hasher, tokens, throttle, hashing, on_revoked)
        if settings.first_superuser is not None:
            admin = settings.first_superuser
            await service.accounts.ensure_first_superuser(
                email=admin.email, username=admin.username, password=admin.password
            )

        def register(server: grpc.aio.Server) -> Sequence[str]:
            auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(service, settings.trusted_proxies), server)  # type: ignore[no-untyped-call]
            return [SERVICE_NAME]

        stop_feed = await start_revocation_feed(service.admin, revocations, settings.revocation_poll_seconds)
        running = await start_server(
            settings.grpc_addr,
            register,
            build_interceptors(tokens),
            slow_ms=settings.log.slow_ms,
            metrics_addr=settings.metrics_addr,
            metrics=metrics,
            tls=settings.tls,
        )
    except BaseException:
        if stop_feed is not None:
            await stop_feed()
        hashing.close()
        database.close()
        raise

    async def close_database() -> None:
        assert stop_feed is not None
        await stop_feed()
        await asyncio.to_thread(hashing.close)
        await asyncio.to_thread(database.close)

    running.on_stop.append(close_database)
    if settings.service_token is None:
        log.info("AUTH_SERVICE_TOKEN is not set: ListRevocations refuses every caller (no revocation polling)")
    log.info(
        "auth server listening on %s (port %d), database %s, tokens %s%s",
        settings.grpc_addr,
        running.port,
        describe_url(settings.database_url),
        settings.jwt.algorithm,
        f" signed by key {settings.signing_keys[-1].kid}" if settings.signing_keys else "",
    )
    return running
