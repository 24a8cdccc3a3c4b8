"""Domain model of the download server: tasks, segments, failures, videos and their rules (no I/O)."""
