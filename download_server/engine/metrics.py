"""EngineMetrics: what the engine counts (bytes, segments, failure records, retries, run outcomes)."""

from __future__ import annotations

from typing import Protocol


class EngineMetrics(Protocol):
    """Called from the engine's hot paths: implementations must be cheap and never raise or block."""

    def bytes_received(self, count: int) -> None:
        """Media bytes off the network (segments, files, images), counted whether or not the attempt succeeded."""
        ...

    def segment_finished(self, result: str) -> None:
        """A segment (or whole file) fetch ended: result is "done" or "failed"."""
        ...

    def failure_recorded(self, error_type: str) -> None:
        """A new failure record was written."""
        ...

    def fetch_retried(self, error_type: str) -> None:
        """One request failed in a way worth another attempt, which follows after a backoff."""
        ...

    def run_ended(self, status: str) -> None:
        """A run ended in this task status (COMPLETED, PARTIAL_COMPLETED, FAILED, PAUSED, CANCELLED)."""
        ...


class NoMetrics:
    """The default: counts nothing (engine tests, tools)."""

    def bytes_received(self, count: int) -> None:
        return None

    def segment_finished(self, result: str) -> None:
        return None

    def failure_recorded(self, error_type: str) -> None:
        return None

    def fetch_retried(self, error_type: str) -> None:
        return None

    def run_ended(self, status: str) -> None:
        return None
