"""Progress: the broker watchers read, the one place events are built, the tracker, the replica relay."""
