"""The hot read: one task by id (and owner) for GetTask, the watch streams' first state and ownership checks.

SQLAlchemy Core on a plain connection with statements built once: no Session, no unit of work, no ORM
identity map, and the compiled form comes from the engine's cache on every call. Profiles of GetTask under
h2load showed the ORM path (building the select, the session's begin/commit, loading an instance) at about
a third of the server's CPU per call; this path gives the same Task from the same row.
"""

from __future__ import annotations

from sqlalchemy import Engine, bindparam, select

from download_server.adapters import rows
from download_server.adapters.orm import TaskRow
from download_server.domain.errors import task_missing
from download_server.domain.models import Task

_TASKS = TaskRow.__table__
_BY_ID = select(_TASKS).where(_TASKS.c.id == bindparam("task_id"))
_BY_OWNER = _BY_ID.where(_TASKS.c.user_id == bindparam("user_id"))


def read_task(engine: Engine, task_id: str, user_id: str | None) -> Task:
    """The task, if it exists (and belongs to `user_id` when given); NotFound otherwise, as the repository says."""
    statement, params = (
        (_BY_ID, {"task_id": task_id}) if user_id is None else (_BY_OWNER, {"task_id": task_id, "user_id": user_id})
    )
    with engine.connect() as connection:
        found = connection.execute(statement, params).one_or_none()
    if found is None:
        raise task_missing(task_id)
    return rows.to_task(found)  # type: ignore[arg-type]  # a Row has the same attributes as a TaskRow
