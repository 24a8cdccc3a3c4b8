"""DeleteTask of a running download is one transaction: the owner check, the lock and every row's removal.

The run is stopped first (it writes nothing more and keeps its lease, so no replica claims the task in
between), then one transaction checks the caller owns the task, locks it and deletes its segments,
failures, video record and row. Watched from the database side: every statement the servers send is
recorded with the transaction it ran in.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from sqlalchemy import Engine, event

from download_server.adapters.rows import COUNTER_FIELDS
from mediadl.download.v1 import download_pb2 as pb
from tests.download.api import rpc_failure
from tests.download.engine_api.flows import TS, Downloads, events_of, seg, until

_WRITE = re.compile(r"^\s*(INSERT INTO|UPDATE|DELETE FROM)\s+\"?(tasks|segments|failures|videos)\b", re.IGNORECASE)
# The engine's own writes, not part of any request: a running lease renews itself every few seconds, and a
# progress flush may still be on its way when the run is stopped (counters and segment states only).
_RENEWAL = re.compile(r"^\s*UPDATE tasks SET lease_expires=\S+ WHERE", re.IGNORECASE)
_SEGMENT_WRITE = re.compile(r"^\s*(UPDATE segments SET|INSERT INTO segments)", re.IGNORECASE)
_TASK_UPDATE = re.compile(r"^\s*UPDATE tasks SET (.*?) WHERE", re.IGNORECASE)


def _is_flush(statement: str) -> bool:
    """A progress flush's write: segment states, or a task UPDATE of counter columns only (never status)."""
    if _SEGMENT_WRITE.match(statement):
        return True
    update = _TASK_UPDATE.match(statement)
    columns = {part.split("=")[0].strip() for part in update.group(1).split(",")} if update else set()
    return bool(columns) and columns <= set(COUNTER_FIELDS)


class Statements:
    """Every SQL statement any engine of this process sends, with a number per transaction."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []
        self._open: dict[int, int] = {}
        self._count = 0
        self._lock = threading.Lock()

    def begin(self, conn: Any) -> None:
        with self._lock:
            self._count += 1
            self._open[id(conn)] = self._count

    def execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        with self._lock:
            self.seen.append((self._open.get(id(conn), 0), " ".join(statement.split())))

    def writes(self) -> dict[int, list[str]]:
        """The writes to the task tables, by transaction: lease renewals and progress flushes left out (a
        flush is a transaction of counter and segment-state writes only; anything else in it still counts)."""
        found: dict[int, list[str]] = {}
        for tx, statement in self.seen:
            if _WRITE.match(statement) and not _RENEWAL.match(statement):
                found.setdefault(tx, []).append(statement)
        return {tx: written for tx, written in found.items() if not all(_is_flush(w) for w in written)}

    def of(self, tx: int) -> list[str]:
        return [statement for number, statement in self.seen if number == tx]


@contextmanager
def recording() -> Iterator[Statements]:
    statements = Statements()
    event.listen(Engine, "begin", statements.begin)
    event.listen(Engine, "before_cursor_execute", statements.execute)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", statements.execute)
        event.remove(Engine, "begin", statements.begin)


async def test_deleting_a_running_download_is_one_transaction(both_downloads: Downloads) -> None:
    downloads, origin = both_downloads, both_downloads.origin
    origin.fail(seg(1), status=404)  # a failure record, so every table the task has rows in is involved
    gates = [origin.gate(seg(i)) for i in (3, 4, 5)]
    task = await downloads.create(TS)
    stream = downloads.start_stream(task.id)
    await until(stream, lambda e: e.segments_done == 2 and e.segments_failed == 1)
    assert (await downloads.get(task.id)).status == pb.TASK_STATUS_PROCESSING
    assert len(await downloads.failures(task.id)) == 1

    with recording() as statements:
        request = pb.DeleteTaskRequest(task_id=task.id, delete_files=True)
        await downloads.api.stub.DeleteTask(request, metadata=downloads.md())

    writes = statements.writes()
    assert len(writes) == 1, f"DeleteTask wrote in {len(writes)} transactions: {writes}"
    [(tx, written)] = writes.items()
    assert sorted(re.sub(r"\s.*", "", w.split("FROM ")[-1]) for w in written if w.startswith("DELETE")) == [
        "failures",
        "segments",
        "tasks",
        "videos",
    ], written
    assert not [w for w in written if not w.startswith("DELETE")], "nothing is marked or updated first"
    # The same transaction read the row first, locked and scoped to its owner.
    first = statements.of(tx)[0]
    assert first.startswith("SELECT") and "FROM tasks" in first and "tasks.user_id" in first, first

    last = (await events_of(stream))[-1]
    assert (last.status, last.message) == (pb.TASK_STATUS_CANCELLED, "deleted")
    gone = await rpc_failure(downloads.api.stub.GetTask(pb.GetTaskRequest(task_id=task.id), metadata=downloads.md()))
    assert gone.code == grpc.StatusCode.NOT_FOUND
    assert await downloads.api.store.list_segments(task.id) == []
    assert [origin.completed[seg(i)] for i in (3, 4, 5)] == [0, 0, 0]  # the run stopped before the rows went
    for gate in gates:
        gate.set()
