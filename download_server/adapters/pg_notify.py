"""PgRelay: replicas on one PostgreSQL database signal each other with LISTEN/NOTIFY.

Three channels: task events (compact JSON, adapters/pg_events.py), "work available" nudges, and commands for a
task's lease holder. Each replica keeps one dedicated LISTEN connection, read on the event loop through
loop.add_reader, and sends what its outbox (adapters/pg_outbox.py) holds from one task over one connection
of its own (in order: NOTIFYs of one transaction arrive in the order sent, transactions in commit order).
A lost connection is opened again with backoff; then what local watchers wait on is read from the database,
since events may have been missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from download_server.adapters.pg_events import decode_event
from download_server.adapters.pg_outbox import COMMANDS, EVENTS, WORK, Batch, NotifyOutbox
from download_server.domain.models import Task, TaskEvent
from download_server.domain.ports import EventSink
from mediadl_common.db import make_engine

log = logging.getLogger(__name__)

# libpq TCP keepalives: a peer that vanished without closing the connection is noticed in about 25 s.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
SEND = text("SELECT pg_notify(c, p) FROM unnest(CAST(:c AS text[]), CAST(:p AS text[])) AS n(c, p)")


def _nothing() -> None:
    pass


class PgRelay:
    def __init__(
        self,
        url: str,
        replica_id: str,
        load_tasks: Callable[[Sequence[str]], Awaitable[list[Task]]],
        *,
        reconnect_delay: float = 0.5,
    ) -> None:
        self._url = url
        self._reconnect_delay = reconnect_delay
        self._origin = replica_id
        self._load = load_tasks
        self._broker: EventSink | None = None
        self._on_work: Callable[[], None] = _nothing
        self._on_command: Callable[[str], None] = lambda _task_id: None
        self._outbox = NotifyOutbox(replica_id)
        self._wake = asyncio.Event()
        self._executor: ThreadPoolExecutor | None = None
        self._send_engine: Engine | None = None
        self._listen_engine: Engine | None = None
        self._listener: Any = None  # the pool's proxy of the LISTEN connection
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sender: asyncio.Task[None] | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._reading: set[asyncio.Task[None]] = set()  # events sent by reference, being read from their rows
        self._deaf = asyncio.Event()  # set while the LISTEN connection is down
        self._closed = False

    def bind(self, broker: EventSink, on_work: Callable[[], None], on_command: Callable[[str], None]) -> None:
        self._broker, self._on_work, self._on_command = broker, on_work, on_command

    @property
    def listening(self) -> bool:
        return self._fd is not None

    async def wait_deaf(self) -> None:
        """Until the LISTEN connection is down (tests; notifications sent meanwhile never arrive)."""
        await self._deaf.wait()

    # Outgoing (never blocks: the sender task does the I/O)
    def send_event(self, event: TaskEvent) -> None:
        self._outbox.add_event(event)
        self._wake.set()

    def work_available(self) -> None:
        self._outbox.add_work()
        self._wake.set()

    def command(self, task_id: str) -> None:
        self._outbox.add_command(task_id)
        self._wake.set()

    # Lifecycle
    async def start(self) -> None:
        """Open the LISTEN connection (or keep trying in the background) and start sending."""
        self._loop = asyncio.get_running_loop()
        # Two threads: a send never waits behind a slow (re)connect. Sends stay in order because the one
        # sender task awaits each before the next.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pg-notify")
        self._send_engine = make_engine(self._url, pool_size=1)
        self._listen_engine = create_engine(self._url, poolclass=NullPool, connect_args=KEEPALIVES)
        self._sender = asyncio.create_task(self._send_loop(), name="notify-sender")
        try:
            self._listening(await self._loop.run_in_executor(self._executor, self._open_listener))
        except Exception as exc:
            log.warning("cannot LISTEN on PostgreSQL yet (%s): retrying in the background", type(exc).__name__)
            self._reconnecting = asyncio.create_task(self._reconnect(), name="notify-reconnect")

    async def close(self) -> None:
        """Send what is pending (a hand-back nudge must reach the others), then close both connections."""
        self._closed = True
        for task in (self._sender, self._reconnecting):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await task
        if self._loop is None or self._executor is None:
            return
        batch = self._outbox.take()
        if batch:
            with suppress(Exception):
                await asyncio.wait_for(self._loop.run_in_executor(self._executor, self._send, batch), timeout=5)
        self._drop_listener()
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(Exception):
                await self._loop.run_in_executor(self._executor, listener.close)
        for engine in (self._send_engine, self._listen_engine):
            if engine is not None:
                await self._loop.run_in_executor(self._executor, engine.dispose)
        self._executor.shutdown(wait=False)

    # Sending
    def _send(self, batch: Batch) -> None:
        assert self._send_engine is not None
        with self._send_engine.begin() as conn:
            conn.execute(SEND, {"c": [item[0] for item in batch], "p": [item[1] for item in batch]})

    async def _send_loop(self) -> None:
        assert self._loop is not None and self._executor is not None
        delay = 0.5
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch = self._outbox.take()
            if not batch:
                continue
            try:
                await self._loop.run_in_executor(self._executor, self._send, batch)
                delay = 0.5
            except Exception as exc:
                log.warning("NOTIFY failed (%s): sending again in %.1fs", type(exc).__name__, delay)
                self._outbox.put_back(batch)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                self._wake.set()

    # Listening
    def _open_listener(self) -> Any:
        assert self._listen_engine is not None
        proxy = self._listen_engine.raw_connection()
        try:
            conn = proxy.driver_connection
            assert conn is not None
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f"LISTEN {EVENTS}; LISTEN {WORK}; LISTEN {COMMANDS}")
        except BaseException:
            proxy.close()
            raise
        return proxy

    def _listening(self, proxy: Any) -> None:
        assert self._loop is not None
        self._listener = proxy
        self._deaf.clear()
        self._fd = proxy.driver_connection.fileno()
        assert self._fd is not None
        self._loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        conn = self._listener.driver_connection
        try:
            conn.poll()
        except Exception as exc:
            log.warning("the LISTEN connection to PostgreSQL was lost (%s): reconnecting", type(exc).__name__)
            self._lost()
            return
        while conn.notifies:
            note = conn.notifies.pop(0)
            try:
                self._dispatch(note.channel, note.payload)
            except Exception:
                log.warning("ignoring a malformed notification on %s", note.channel, exc_info=True)

    def _dispatch(self, channel: str, payload: str) -> None:
        if channel == EVENTS:
            origin, event = decode_event(payload)
            if origin == self._origin or self._broker is None:
                return  # published here already
            if isinstance(event, str):
                reading = asyncio.create_task(self._deliver_rows([event]), name="notify-by-reference")
                self._reading.add(reading)
                reading.add_done_callback(self._reading.discard)
            else:
                self._broker.deliver(event)
        elif channel == WORK:
            if payload != self._origin:
                self._on_work()
        elif channel == COMMANDS:
            fields = json.loads(payload)
            if fields["o"] != self._origin:
                self._on_command(str(fields["t"]))

    def _drop_listener(self) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
        self._fd = None

    def _lost(self) -> None:
        self._deaf.set()
        self._drop_listener()
        listener, self._listener = self._listener, None
        if listener is not None and self._loop is not None and self._executor is not None:
            self._loop.run_in_executor(self._executor, _discard, listener)
        if not self._closed and (self._reconnecting is None or self._reconnecting.done()):
            self._reconnecting = asyncio.create_task(self._reconnect(), name="notify-reconnect")

    async def _reconnect(self) -> None:
        assert self._loop is not None and self._executor is not None
        delay = self._reconnect_delay
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                proxy = await self._loop.run_in_executor(self._executor, self._open_listener)
            except Exception as exc:
                delay = min(delay * 2, 5.0)
                log.info("LISTEN reconnect failed (%s): next try in %.1fs", type(exc).__name__, delay)
                continue
            self._listening(proxy)
            log.info("listening on PostgreSQL again: re-reading the tasks local watchers follow")
            try:
                await self._resync()
            except Exception:
                log.warning("re-reading watched tasks failed", exc_info=True)
            return

    async def _resync(self) -> None:
        """Events sent while we were not listening are lost: deliver the stored state of every task a local
        watcher may wait on whose status moved meanwhile; look for work a nudge may have announced."""
        if self._broker is not None:
            await self._deliver_rows(self._broker.unsettled(), only_changed=True)
        self._on_work()

    async def _deliver_rows(self, task_ids: Sequence[str], *, only_changed: bool = False) -> None:
        broker = self._broker
        if broker is None or not task_ids:
            return
        found = {task.id: task for task in await self._load(task_ids)}
        for task_id in task_ids:
            latest = broker.latest(task_id)
            task = found.get(task_id)
            if task is None:
                if latest is not None:  # deleted meanwhile: CANCELLED ends the streams that follow it
                    broker.deliver(latest.as_deleted())
            elif not only_changed or latest is None or latest.status is not task.status:
                broker.deliver(TaskEvent.of(task))


def _discard(proxy: Any) -> None:
    # invalidate, not close: closing would first roll back on the dead connection (and log that it failed).
    with suppress(Exception):
        proxy.invalidate()
