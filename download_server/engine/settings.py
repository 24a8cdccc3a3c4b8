"""EngineSettings: the engine's knobs in one typed object (bootstrap fills it from DownloadSettings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from download_server.engine.http.fetch_settings import FetchSettings


@dataclass(frozen=True)
class EngineSettings:
    storage_dir: Path = Path("storage")
    max_active_tasks: int = 4
    segment_concurrency: int = 8
    allow_private_networks: bool = False
    fetch: FetchSettings = field(default_factory=FetchSettings)
    # Progress: events at most every `event_interval` s per running task, at least every `heartbeat` s;
    # counters and segment states reach the database at most every `flush_interval` s (and at every state change).
    event_interval: float = 0.25
    heartbeat: float = 1.0
    flush_interval: float = 1.0
    # Live playlists are polled every target duration; None keeps that, a number overrides it (tests).
    live_poll_interval: float | None = None
    # A live playlist that errors or stops changing is polled this long (with backoff) before the recording
    # is taken as ended: encoder restarts and CDN failovers last seconds to a minute (DOWNLOAD_LIVE_OUTAGE_SECONDS).
    live_outage_seconds: float = 60.0
