"""SQL repositories: one per table, each working inside the session of one unit of work."""
