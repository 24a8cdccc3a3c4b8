"""What a run writes of a task: the engine's own fields, onto a fresh copy of the row."""

from __future__ import annotations

from download_server.domain.models import Task
from download_server.domain.ports import TaskStore
from mediadl_common.errors import NotFound

# What the engine owns in a task row; everything else (titles, URLs) belongs to the user's requests.
ENGINE_FIELDS = (
    "status",
    "progress",
    "bytes_downloaded",
    "bytes_total",
    "segments_total",
    "segments_done",
    "segments_failed",
    "retry_count",
    "last_error",
    "update_time",
    "complete_time",
    "queued_time",
    "crash_count",
    "reclaims",
    "live",
)


async def save_state(store: TaskStore, task: Task) -> None:
    """Write the engine's fields onto a fresh copy of the row, so a concurrent title change is not undone."""
    try:
        fresh = await store.get_task(task.id)
    except NotFound:
        return  # deleted meanwhile
    for name in ENGINE_FIELDS:
        setattr(fresh, name, getattr(task, name))
    await store.save_task(fresh)
