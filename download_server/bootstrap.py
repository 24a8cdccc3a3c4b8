"""Composition root: wires settings into database, store, engine, use cases, servicer and interceptors, then serves.

Tests and `python -m download_server` call the same start_download_server(), so what is tested is what runs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

import grpc
from aiohttp.abc import AbstractResolver

from download_server.adapters.files import StorageTaskFiles
from download_server.adapters.jwks import auth_server_jwks, start_key_refresh
from download_server.adapters.leases import SqlLeases
from download_server.adapters.metrics import PrometheusEngineMetrics
from download_server.adapters.migration_lock import migrate_exclusively
from download_server.adapters.pg_notify import PgRelay
from download_server.adapters.storage import Storage
from download_server.adapters.store import SqlTaskStore
from download_server.config import DownloadSettings
from download_server.engine.claims import ReplicaSettings, default_replica_id
from download_server.engine.guard import UrlGuard
from download_server.engine.notify import LocalRelay, Relay
from download_server.engine.scheduler import create_scheduler
from download_server.engine.settings import EngineSettings
from download_server.engine.url_policy import Resolver, check_url
from download_server.grpc.servicer import SERVICE_NAME, DownloadServicer
from download_server.migrations import SCRIPT_LOCATION
from download_server.services.failures import FailureService
from download_server.services.pagination import PageTokens
from download_server.services.ports import Scheduler
from download_server.services.tasks import TaskService
from download_server.services.videos import VideoService
from mediadl.download.v1 import download_pb2_grpc
from mediadl_common.auth_interceptor import AuthInterceptor
from mediadl_common.config import ConfigError
from mediadl_common.db import Database, describe_url
from mediadl_common.interceptors import ErrorBoundaryInterceptor
from mediadl_common.keys import PublicKey, VerificationKeys, load_jwks_file
from mediadl_common.metrics import Metrics
from mediadl_common.server import RunningServer, start_server
from mediadl_common.tokens import JwtCodec

log = logging.getLogger(__name__)


def build_codec(settings: DownloadSettings) -> JwtCodec:
    """A verifier: the shared secret for HS*, else public keys from JWT_PUBLIC_KEYS_FILE or GetJwks.

    A token naming a kid we do not know re-reads the source (rate-limited by VerificationKeys), so a key
    rotation needs no restart. The server never holds a private key.
    """
    jwt = settings.jwt
    if not jwt.asymmetric:
        return JwtCodec(jwt)
    path = jwt.public_keys_file
    fetch: Callable[[], Awaitable[Mapping[str, PublicKey]]]
    if path is not None:

        async def reload() -> Mapping[str, PublicKey]:
            return await asyncio.to_thread(load_jwks_file, path, jwt.algorithm)

        fetch = reload
    elif settings.jwks_auth_addr is not None:
        fetch = auth_server_jwks(settings.jwks_auth_addr, jwt.algorithm)
    else:
        raise ConfigError(f"JWT_ALGORITHM={jwt.algorithm} needs JWT_PUBLIC_KEYS_FILE or AUTH_GRPC_ADDR")
    keys = VerificationKeys(settings.public_keys, fetch, min_refresh_interval=jwt.jwks_min_refresh_seconds)
    return JwtCodec(jwt, verification_keys=keys)


def build_servicer(
    settings: DownloadSettings, store: SqlTaskStore, scheduler: Scheduler, resolve: Resolver | None = None
) -> DownloadServicer:
    """The use cases and the servicer over them; `resolve` replaces DNS for the URL policy (tests)."""
    tokens = PageTokens(settings.jwt.secret_key)
    url_checker = functools.partial(check_url, allow_private=settings.allow_private_networks, resolve=resolve)
    files = StorageTaskFiles(Storage(settings.storage_dir))
    return DownloadServicer(
        tasks=TaskService(store, scheduler, tokens, url_checker, files),
        failures=FailureService(store, scheduler, tokens),
        videos=VideoService(store, tokens),
    )


def replica_settings(settings: DownloadSettings) -> ReplicaSettings:
    """This replica's name and lease timing (a name is made up per process unless DOWNLOAD_REPLICA_ID is set)."""
    return ReplicaSettings(
        replica_id=settings.replica_id or default_replica_id(),
        lease_seconds=settings.lease_seconds,
        claim_interval=settings.claim_interval_seconds,
    )


def engine_settings(settings: DownloadSettings) -> EngineSettings:
    """The engine's knobs from the server's settings (timeouts, retries and intervals keep their defaults)."""
    return EngineSettings(
        storage_dir=settings.storage_dir,
        max_active_tasks=settings.max_active_tasks,
        segment_concurrency=settings.segment_concurrency,
        allow_private_networks=settings.allow_private_networks,
    )


async def start_download_server(
    settings: DownloadSettings,
    *,
    migrate: bool = True,
    engine: EngineSettings | None = None,
    resolve: Resolver | None = None,
    resolver: AbstractResolver | None = None,
    guard: UrlGuard | None = None,
) -> RunningServer:
    """Open (and unless told not to, migrate) the database, serve DownloadService on settings.grpc_addr, then
    recover the downloads a previous process left running or queued.

    Seams for tests: `engine` replaces engine_settings(settings) (shorter timeouts and intervals); `resolve`
    answers the URL policy's name lookups (at create/update and at download time), `resolver` aiohttp's
    lookups for connections, and `guard` replaces the engine's URL policy guard altogether.

    Shutdown (RunningServer.stop): in-flight calls get the grace period, then the scheduler stops every run
    and closes the HTTP session, then the database closes. Runs stopped that way stay PROCESSING, and tasks
    waiting for a slot stay PENDING with their queued_time, so the next start resumes and re-queues them.
    """
    database = Database(settings.database_url, pool_size=settings.db_pool_size)
    metrics = Metrics()
    engine_metrics = PrometheusEngineMetrics(metrics.registry)
    store = SqlTaskStore(database)
    leases = SqlLeases(database)
    replica = replica_settings(settings)
    # Other replicas may share a PostgreSQL database: they hear of events, work and commands by NOTIFY.
    relay: Relay = LocalRelay()
    if leases.shared:
        relay = PgRelay(settings.database_url, replica.replica_id, store.tasks_by_ids)
    scheduler = create_scheduler(
        store,
        engine or engine_settings(settings),
        resolve=resolve,
        resolver=resolver,
        guard=guard,
        metrics=engine_metrics,
        leases=leases,
        relay=relay,
        replica=replica,
    )
    engine_metrics.observe_scheduler(scheduler.running_count, scheduler.queued_count)
    try:
        if migrate:
            await database.run(migrate_exclusively, settings.database_url, SCRIPT_LOCATION)
        # Listening before serving: no event of a task a new stream follows can slip past.
        await relay.start()
        servicer = build_servicer(settings, store, scheduler, resolve)

        def register(server: grpc.aio.Server) -> Sequence[str]:
            download_pb2_grpc.add_DownloadServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
            return [SERVICE_NAME]

        codec = build_codec(settings)
        interceptors = [ErrorBoundaryInterceptor(), AuthInterceptor.for_services(codec, [SERVICE_NAME])]
        running = await start_server(
            settings.grpc_addr,
            register,
            interceptors,
            slow_ms=settings.log.slow_ms,
            metrics_addr=settings.metrics_addr,
            metrics=metrics,
        )
    except BaseException:
        await scheduler.close()
        await relay.close()
        database.close()
        raise

    async def drain_engine() -> None:
        # First thing on SIGTERM: stop claiming and hand the runs back, so other replicas resume them now
        # rather than when the grace period is over or a lease has lapsed.
        try:
            await scheduler.drain()
        except Exception:
            log.exception("handing back the running downloads failed; their leases lapse by themselves")

    async def stop_engine() -> None:
        try:
            await scheduler.close()
        except Exception:
            # The database must still close; what the runs did not persist, recovery re-reads from disk.
            log.exception("stopping the download engine failed")

    async def close_relay() -> None:
        await relay.close()

    async def close_database() -> None:
        await asyncio.to_thread(database.close)

    async def end_watch_streams() -> None:
        # WatchTasks never ends by itself: without this, an open dashboard holds shutdown for the whole grace.
        scheduler.broker.close_all()

    running.before_stop += [drain_engine, end_watch_streams]
    # In this order: the engine persists its runs' last progress and sends its last signals before the database goes.
    running.on_stop += [stop_engine, close_relay, close_database]
    try:
        if settings.jwks_auth_addr is not None and codec.verification_keys is not None:
            running.on_stop.append(await start_key_refresh(codec.verification_keys, settings.jwt.jwks_refresh_seconds))
        await scheduler.recover()
        # Announced last: whoever waits for this line (ops, tests) then finds the process ready for signals
        # too (the serve loop installs its handlers right after this returns).
        log.info(
            "download server listening on %s (port %d), database %s, storage %s, replica %s",
            settings.grpc_addr,
            running.port,
            describe_url(settings.database_url),
            settings.storage_dir,
            replica.replica_id,
        )
    except BaseException:
        await running.stop(0)
        raise
    return running
