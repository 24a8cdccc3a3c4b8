"""EngineSettings: the engine's knobs in one typed object (bootstrap fills it from DownloadSettings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from download_server.engine.http.fetch_settings import FetchSettings


@dataclass(frozen=True)
class EngineSettings:
    storage_dir: Path = Path("storage")
    max_active_tasks: int = 4
    # Running tasks one user may have (0: no cap); free slots go round-robin across users (domain.leases).
    max_active_tasks_per_user: int = 0
    segment_concurrency: int = 8
    # DOWNLOAD_RANGE_CONNECTIONS: connections one MP4 or image may use at once when its origin does ranges
    # (1: one connection, as before). Files under two minimum parts are never split (jobs/ranged.py).
    range_connections: int = 4
    range_min_part_bytes: int = 8 * 1024 * 1024
    allow_private_networks: bool = False
    fetch: FetchSettings = field(default_factory=FetchSettings)
    # Progress: events at most every `event_interval` s per running task, at least every `heartbeat` s;
    # counters and segment states reach the database at most every `flush_interval` s (and at every state change).
    event_interval: float = 0.25
    heartbeat: float = 1.0
    flush_interval: float = 1.0
    # Live playlists are polled every target duration; None keeps that, a number overrides it (tests).
    live_poll_interval: float | None = None
    # A live playlist that stops changing for this many polls is taken as ended (a room that went quiet).
    live_max_idle_polls: int = 30
    # The final sweep: segments that failed with a retryable error are tried again for at most this long
    # after the rest of the run, before it may end PARTIAL_COMPLETED.
    sweep_seconds: float = 60.0
    # A task whose runs end in an unexpected exception this many times in a row is quarantined (FAILED).
    quarantine_after: int = 3
    # A task re-claimed after an interrupted run (a process death, a restart) waits this long first, doubling
    # with each further interruption up to the maximum: a task that kills its process cannot hot-loop.
    reclaim_backoff: float = 1.0
    reclaim_backoff_max: float = 30.0
    # DOWNLOAD_USER_QUOTA_BYTES (0: none): a run that crosses it stops fetching, with failure records.
    user_quota_bytes: int = 0
    # A live playlist that errors or stops changing is polled this long (with backoff) before the recording
    # is taken as ended: encoder restarts and CDN failovers last seconds to a minute (DOWNLOAD_LIVE_OUTAGE_SECONDS).
    live_outage_seconds: float = 60.0
