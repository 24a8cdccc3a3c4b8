"""Use cases of the download server: tasks, failure records and videos, each a plain async method."""
