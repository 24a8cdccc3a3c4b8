"""PrometheusEngineMetrics: the download engine's counters in the server's own Prometheus registry."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from download_server.domain.models import TaskStatus


class PrometheusEngineMetrics:
    """Implements download_server.engine.metrics.EngineMetrics; series are named mediadl_download_*.

    The task gauge reads the scheduler's own numbers when scraped (running and queued tasks), so a scrape
    never touches the database.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "mediadl_download_received_bytes",
            "Media bytes received from origins (segments, files, images), including attempts that failed",
            registry=registry,
        )
        self.segments = Counter(
            "mediadl_download_segments",
            "Segment (or whole-file) fetches that ended, by result (done, failed)",
            ["result"],
            registry=registry,
        )
        self.failures = Counter(
            "mediadl_download_failures_recorded",
            "Failure records created, by error type",
            ["error_type"],
            registry=registry,
        )
        self.retries = Counter(
            "mediadl_download_fetch_retries",
            "Requests attempted again after a retryable error, by error type",
            ["error_type"],
            registry=registry,
        )
        self.runs = Counter(
            "mediadl_download_runs_ended",
            "Download runs that ended, by the status they left the task in",
            ["status"],
            registry=registry,
        )
        self.tasks = Gauge(
            "mediadl_download_tasks",
            "Tasks the scheduler holds now: PROCESSING (running) and PENDING (started, waiting for a slot)",
            ["status"],
            registry=registry,
        )

    def observe_scheduler(self, running: Callable[[], int], queued: Callable[[], int]) -> None:
        self.tasks.labels(TaskStatus.PROCESSING.value).set_function(running)
        self.tasks.labels(TaskStatus.PENDING.value).set_function(queued)

    def bytes_received(self, count: int) -> None:
        self.received.inc(count)

    def segment_finished(self, result: str) -> None:
        self.segments.labels(result).inc()

    def failure_recorded(self, error_type: str) -> None:
        self.failures.labels(error_type).inc()

    def fetch_retried(self, error_type: str) -> None:
        self.retries.labels(error_type).inc()

    def run_ended(self, status: str) -> None:
        self.runs.labels(status).inc()
