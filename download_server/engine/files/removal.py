"""StorageTaskFiles: which files are a task's own, and deleting those (never another task's, never outside)."""

from __future__ import annotations

import asyncio
import logging

from download_server.domain.models import Task, Video
from download_server.domain.ports import MediaStore, MediaStoreError
from download_server.engine.files.layout import Storage

log = logging.getLogger(__name__)


class StorageTaskFiles:
    """Removes the task's files in the standard layout, plus the file its video record names.

    The video record's path is data, not a trusted location: it is removed only when it resolves (symlinks
    followed) to a regular file of the task's own (Storage.owns), so no record can reach another task's files.
    """

    def __init__(self, storage: Storage, media: MediaStore | None = None) -> None:
        self._storage = storage
        self._media = media

    async def remove(self, task: Task, video: Video | None) -> None:
        # Removing a large tree is disk I/O: keep it off the event loop.
        await asyncio.to_thread(self._remove, task, video)
        if self._media is not None and self._media.remote:
            # Every object of the task is under one of its prefixes (a record can name no other file: owns()),
            # and any part upload left open under them is aborted too.
            prefixes = self._storage.task_prefixes(task)
            try:
                await self._media.remove(prefixes)
            except MediaStoreError as exc:
                # The rows are gone already: say which objects an operator (or a bucket rule) must remove.
                log.error(
                    "the task's objects could not be deleted: %s (prefixes %s)",
                    exc,
                    prefixes,
                    extra={"task_id": task.id},
                )

    def _remove(self, task: Task, video: Video | None) -> None:
        self._storage.delete_files(task)
        if video is not None:
            path = self._storage.resolve(video.file_path)
            if self._storage.owns(task, path):
                if path.is_file():
                    path.unlink(missing_ok=True)
            else:
                log.warning("not deleting a video file that is not the task's own", extra={"task_id": task.id})

    def owned(self, task: Task, file_path: str) -> str | None:
        """Blocking. The path relative to the storage root if it is the task's own, else None."""
        path = self._storage.resolve(file_path)
        return str(path.relative_to(self._storage.root)) if self._storage.owns(task, path) else None

    def relative(self, file_path: str) -> str:
        return self._storage.relative(file_path)
