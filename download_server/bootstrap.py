"""Composition root: wires settings into database, store, engine, use cases, servicer and interceptors, then serves.

Tests and `python -m download_server` call the same start_download_server(), so what is tested is what runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from aiohttp.abc import AbstractResolver

from download_server.adapters.auth_link import build_verification_keys, start_keys_refresh, start_revocations
from download_server.adapters.leases import SqlLeases
from download_server.adapters.metrics import PrometheusEngineMetrics
from download_server.adapters.migration_lock import migrate_exclusively
from download_server.adapters.pg_notify import PgRelay
from download_server.adapters.store import SqlTaskStore
from download_server.adapters.unit_of_work import SqlTransactions
from download_server.config import DownloadSettings
from download_server.domain.ports import MediaStore, MediaStoreError, Relay, Scheduler
from download_server.domain.repositories import Transactions
from download_server.engine.files.layout import Storage
from download_server.engine.files.objects import WorkAreaMedia
from download_server.engine.files.reading import StorageRecordingFiles
from download_server.engine.files.removal import StorageTaskFiles
from download_server.engine.http.fetch_settings import FetchSettings
from download_server.engine.http.guard import UrlGuard
from download_server.engine.http.url_policy import Resolver, check_url
from download_server.engine.progress.relay import LocalRelay
from download_server.engine.scheduling.replica import ReplicaSettings, default_replica_id
from download_server.engine.scheduling.scheduler import ReplicaScheduler, create_scheduler
from download_server.engine.settings import EngineSettings
from download_server.grpc.servicer import SERVICE_NAME, DownloadServicer
from download_server.migrations import SCRIPT_LOCATION
from download_server.services.failures import FailureService
from download_server.services.pagination import TOKEN_LABEL
from download_server.services.tasks import TaskService
from download_server.services.videos import VideoService
from mediadl.download.v1 import download_pb2_grpc
from mediadl_common.auth_interceptor import AuthInterceptor
from mediadl_common.db import Database, database_unavailable, describe_url
from mediadl_common.errors import Unavailable
from mediadl_common.interceptors import ErrorBoundaryInterceptor
from mediadl_common.keys import VerificationKeys
from mediadl_common.metrics import Metrics
from mediadl_common.page_tokens import PageTokens
from mediadl_common.revocations import RevocationList
from mediadl_common.server import RunningServer, start_server
from mediadl_common.tokens import TokenVerifier

log = logging.getLogger(__name__)


def build_interceptors(
    settings: DownloadSettings, keys: VerificationKeys | None, revocations: RevocationList | None = None
) -> list[grpc.aio.ServerInterceptor]:
    """The error boundary (a lost database is UNAVAILABLE), then the access-token check of every method
    (refusing the revoked tokens `revocations` names)."""
    verifier = TokenVerifier(settings.jwt, keys, revocations=revocations)
    return [
        ErrorBoundaryInterceptor(translators=[database_unavailable]),
        AuthInterceptor.for_services(verifier, [SERVICE_NAME]),
    ]


def build_servicer(
    settings: DownloadSettings,
    transactions: Transactions,
    scheduler: Scheduler,
    resolve: Resolver | None = None,
    media: MediaStore | None = None,
) -> DownloadServicer:
    """The use cases and the servicer over them; `resolve` replaces DNS for the URL policy (tests); `media` is
    where finished files are (build_media)."""
    tokens = PageTokens(settings.jwt.secret_key, TOKEN_LABEL)
    url_checker = functools.partial(check_url, allow_private=settings.allow_private_networks, resolve=resolve)
    storage = Storage(settings.storage_dir)
    files = StorageTaskFiles(storage, media)
    recordings = StorageRecordingFiles(storage, media=media)
    return DownloadServicer(
        tasks=TaskService(transactions, scheduler, tokens, url_checker, files, settings.guard.user_quota_bytes),
        failures=FailureService(transactions, scheduler, tokens),
        videos=VideoService(transactions, tokens, files, recordings),
    )


def build_media(settings: DownloadSettings) -> MediaStore:
    """The bucket of STORAGE_URL, or the storage directory itself (the default)."""
    bucket = settings.object_storage
    if bucket is None:
        return WorkAreaMedia(settings.storage_dir)
    # Imported only here: botocore and its models cost a local-only server ~10 MiB of RSS for nothing.
    from download_server.adapters.s3_media import S3Location, S3Media

    location = S3Location.parse(
        bucket.url,
        endpoint_url=bucket.endpoint_url,
        region=bucket.region,
        access_key_id=bucket.access_key_id,
        secret_access_key=bucket.secret_access_key,
    )
    # Every segment worker of every running task may upload at once.
    return S3Media(location, max_connections=max(10, settings.max_active_tasks * settings.segment_concurrency + 4))


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
        range_connections=settings.range_connections,
        allow_private_networks=settings.allow_private_networks,
        sweep_seconds=settings.guard.sweep_seconds,
        quarantine_after=settings.guard.quarantine_after,
        user_quota_bytes=settings.guard.user_quota_bytes,
        fetch=dataclasses.replace(
            FetchSettings().bounded(settings.guard.max_file_bytes),
            min_rate_bytes=settings.guard.min_rate_bytes,
            min_rate_window=settings.guard.min_rate_window_seconds,
        ),
        max_active_tasks_per_user=settings.guard.max_active_tasks_per_user,
        live_outage_seconds=settings.live_outage_seconds,
    )


@dataclass(frozen=True)
class EngineSeams:
    """What tests replace in the engine (see start_download_server)."""

    engine: EngineSettings | None = None
    resolve: Resolver | None = None
    resolver: AbstractResolver | None = None
    guard: UrlGuard | None = None


@dataclass(frozen=True)
class Parts:
    """What one download server is made of, opened in this order and closed in the reverse one."""

    database: Database
    metrics: Metrics
    transactions: SqlTransactions
    scheduler: ReplicaScheduler
    relay: Relay
    replica: ReplicaSettings
    media: MediaStore
    # Revoked users the token check refuses, filled by the revocation poller.
    revocations: RevocationList = field(default_factory=RevocationList)


def build_parts(settings: DownloadSettings, seams: EngineSeams) -> Parts:
    """The database, the unit of work over it, and the engine (with the relay other replicas talk through)."""
    database = Database(settings.database_url, pool_size=settings.db_pool_size)
    metrics = Metrics()
    engine_metrics = PrometheusEngineMetrics(metrics.registry)
    transactions = SqlTransactions(database)
    media = build_media(settings)
    store = SqlTaskStore(transactions)
    leases = SqlLeases(transactions)
    replica = replica_settings(settings)
    # Other replicas may share a PostgreSQL database: they hear of events, work and commands by NOTIFY.
    relay: Relay = (
        PgRelay(settings.database_url, replica.replica_id, store.tasks_by_ids) if leases.shared else LocalRelay()
    )
    scheduler = create_scheduler(
        store,
        seams.engine or engine_settings(settings),
        resolve=seams.resolve,
        resolver=seams.resolver,
        guard=seams.guard,
        metrics=engine_metrics,
        leases=leases,
        relay=relay,
        replica=replica,
        media=media,
    )
    engine_metrics.observe_scheduler(scheduler.running_count, scheduler.queued_count)
    return Parts(database, metrics, transactions, scheduler, relay, replica, media)


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
    keys = build_verification_keys(settings)  # a bad key setting stops the start before anything is open
    parts = build_parts(settings, EngineSeams(engine, resolve, resolver, guard))
    try:
        await _check_media(parts.media)
        running = await _serve(settings, parts, keys, migrate=migrate, resolve=resolve)
    except BaseException:
        await parts.scheduler.close()
        await parts.relay.close()
        parts.database.close()
        raise
    _add_shutdown_steps(running, parts)
    try:
        running.on_stop += await start_keys_refresh(settings, keys)
        running.on_stop += await start_revocations(settings, parts.revocations, parts.metrics.registry)
        await parts.scheduler.recover()
        # Announced last: whoever waits for this line (ops, tests) then finds the process ready for signals
        # too (the serve loop installs its handlers right after this returns).
        log.info(
            "download server listening on %s (port %d), database %s, storage %s, replica %s",
            settings.grpc_addr,
            running.port,
            describe_url(settings.database_url),
            _describe_storage(settings, parts.media),
            parts.replica.replica_id,
        )
    except BaseException:
        await running.stop(0)
        raise
    return running


async def _serve(
    settings: DownloadSettings, parts: Parts, keys: VerificationKeys | None, *, migrate: bool, resolve: Resolver | None
) -> RunningServer:
    if migrate:
        await parts.database.run(migrate_exclusively, settings.database_url, SCRIPT_LOCATION)
    # Listening before serving: no event of a task a new stream follows can slip past.
    await parts.relay.start()
    servicer = build_servicer(settings, parts.transactions, parts.scheduler, resolve, parts.media)

    def register(server: grpc.aio.Server) -> Sequence[str]:
        download_pb2_grpc.add_DownloadServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
        return [SERVICE_NAME]

    return await start_server(
        settings.grpc_addr,
        register,
        build_interceptors(settings, keys, parts.revocations),
        slow_ms=settings.log.slow_ms,
        metrics_addr=settings.metrics_addr,
        metrics=parts.metrics,
        tls=settings.tls,
    )


def _add_shutdown_steps(running: RunningServer, parts: Parts) -> None:
    scheduler = parts.scheduler

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
        await parts.relay.close()

    async def close_database() -> None:
        await asyncio.to_thread(parts.database.close)

    async def end_watch_streams() -> None:
        # WatchTasks never ends by itself: without this, an open dashboard holds shutdown for the whole grace.
        scheduler.broker.close_all()

    running.before_stop += [drain_engine, end_watch_streams]
    # In this order: the engine persists its runs' last progress and sends its last signals before the database goes.
    running.on_stop += [stop_engine, close_relay, close_database]


def _describe_storage(settings: DownloadSettings, media: MediaStore) -> str:
    # The work area alone on the local backend (as before); the bucket, never a credential, with S3.
    return f"{media.describe()} (work area {settings.storage_dir})" if media.remote else str(settings.storage_dir)


async def _check_media(media: MediaStore) -> None:
    """A bucket that does not exist or refuses the credentials stops the start with one clear line."""
    try:
        await media.check()
    except MediaStoreError as exc:
        raise Unavailable(f"the media store {media.describe()} cannot be used: {exc}") from None
