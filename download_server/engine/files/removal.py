"""StorageTaskFiles: deletes what a task left under STORAGE_DIR, never anything outside it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from download_server.domain.models import Task, Video
from download_server.engine.files.layout import Storage

log = logging.getLogger(__name__)


class StorageTaskFiles:
    """Removes the task's files in the standard layout, plus the file its video record names.

    The video record's path is data, not a trusted location: it is removed only when it resolves (symlinks
    followed) to a regular file strictly inside the storage root.
    """

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def remove(self, task: Task, video: Video | None) -> None:
        # Removing a large tree is disk I/O: keep it off the event loop.
        await asyncio.to_thread(self._remove, task, video)

    def _remove(self, task: Task, video: Video | None) -> None:
        self._storage.delete_files(task)
        if video is not None:
            path = self.inside_root(video.file_path)
            if path is not None and path.is_file():
                path.unlink(missing_ok=True)
            elif path is None:
                log.warning("not deleting a video file outside the storage directory", extra={"task_id": task.id})

    def inside_root(self, file_path: str) -> Path | None:
        """The resolved path if it lies strictly inside the storage root, else None."""
        root = self._storage.root
        candidate = Path(file_path)
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
        if resolved == root or not resolved.is_relative_to(root):
            return None
        return resolved
