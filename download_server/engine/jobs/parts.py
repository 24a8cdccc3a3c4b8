"""What every run of this replica shares (store, storage layout, fetcher, settings, media store, metrics, disk
writer)."""

from __future__ import annotations

from dataclasses import dataclass, field

from download_server.domain.models import FailureStatus
from download_server.domain.ports import MediaStore, TaskStore
from download_server.engine.fence import DiskRunner
from download_server.engine.files.disk import DiskWriter
from download_server.engine.files.layout import Storage
from download_server.engine.http.fetch import Fetcher
from download_server.engine.metrics import EngineMetrics, NoMetrics
from download_server.engine.settings import EngineSettings

WHOLE = -1  # the segment_index of a failure that concerns the whole resource (or an HLS playlist)
OPEN = (FailureStatus.PENDING, FailureStatus.RETRYING)


@dataclass(frozen=True)
class EngineParts:
    store: TaskStore
    storage: Storage
    fetcher: Fetcher
    settings: EngineSettings
    # Where finished files are published (the work area itself, or a bucket): engine/files/objects.py.
    media: MediaStore
    metrics: EngineMetrics = field(default_factory=NoMetrics)
    # Shared by every job's file sinks: a few threads for all the server's disk work (see DiskWriter).
    writer: DiskRunner = field(default_factory=DiskWriter)
