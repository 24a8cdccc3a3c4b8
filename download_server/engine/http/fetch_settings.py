"""FetchSettings: the HTTP client's timeouts, retry policy and body bounds in one typed object."""

from __future__ import annotations

from dataclasses import dataclass, replace

MiB = 1024 * 1024


@dataclass(frozen=True)
class FetchSettings:
    """Timeouts, retry policy and body bounds. Defaults suit production; tests shrink the waits."""

    connect_timeout: float = 10.0
    # Longest silence while reading headers or body; a stalled origin fails the attempt, which is retried.
    read_timeout: float = 30.0
    # Whole-request deadline for small bodies (playlists, keys, images); big files have only read_timeout.
    small_total_timeout: float = 60.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 10.0
    # Retry-After is honoured up to this many seconds, so one origin cannot park a job for an hour.
    retry_after_max: float = 30.0
    max_redirects: int = 10
    connection_limit: int = 100
    chunk_size: int = 256 * 1024
    # Body bounds. A playlist of 8 MiB is ~100k segments; an AES-128 key is 16 bytes (64 leaves room for
    # nothing but a mistake); images are rarely above a few MiB.
    playlist_max_bytes: int = 8 * MiB
    key_max_bytes: int = 64
    init_max_bytes: int = 16 * MiB
    image_max_bytes: int = 50 * MiB
    segment_max_bytes: int = 1024 * MiB
    # DOWNLOAD_MAX_FILE_BYTES: any one file (an MP4), declared or streamed; the bounds above never exceed it.
    max_file_bytes: int = 20 * 1024 * MiB
    # A transfer slower than this over the window is aborted and retried like a timeout (0: no minimum).
    min_rate_bytes: float = 1024.0
    min_rate_window: float = 30.0
    user_agent: str = "mediadl/0.1"
    # Circuit breaker per origin host: this many failures in a row open it; a probe goes after the cooldown,
    # which doubles with each failed probe up to the maximum.
    circuit_failures: int = 10
    circuit_cooldown: float = 1.0
    circuit_cooldown_max: float = 30.0
    # A run may retry `floor` times plus `ratio` times per successful request (see RunRetries).
    retry_budget_floor: int = 20
    retry_budget_ratio: float = 1.0

    def bounded(self, max_file_bytes: int) -> FetchSettings:
        """These settings with every body bound at most `max_file_bytes` (DOWNLOAD_MAX_FILE_BYTES)."""
        return replace(
            self,
            max_file_bytes=max_file_bytes,
            segment_max_bytes=min(self.segment_max_bytes, max_file_bytes),
            image_max_bytes=min(self.image_max_bytes, max_file_bytes),
            init_max_bytes=min(self.init_max_bytes, max_file_bytes),
        )
