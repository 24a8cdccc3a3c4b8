"""Task files on disk: the storage layout, sinks that write whole files atomically, the disk writer, removal."""
