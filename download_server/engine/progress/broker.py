"""The progress broker: the engine publishes TaskEvents; any number of watchers, per task or per user, read them.

Publishing never blocks and never waits on a watcher. Each subscription keeps, per task, the status
changes it has not read yet plus only the newest progress event: a slow watcher skips intermediate
progress but never misses the latest state or a terminal (or PAUSED) event, and its memory is bounded
by the number of tasks it watches.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable

from download_server.domain.models import Task, TaskEvent, TaskStatus

# Per task, how many unread status changes a subscription keeps before dropping the oldest non-final ones.
MAX_PENDING_PER_TASK = 16
# How many tasks' last events the broker remembers (to give a new watcher the freshest state at once).
MAX_REMEMBERED = 10_000


class Subscription:
    """An async iterator of events; close() (or leaving `with`) unsubscribes. Never blocks the publisher."""

    def __init__(
        self, broker: ProgressBroker, task_id: str | None, user_id: str | None, statuses: frozenset[TaskStatus]
    ) -> None:
        self._broker = broker
        self.task_id = task_id
        self.user_id = user_id
        self._statuses = statuses
        self._pending: OrderedDict[str, list[TaskEvent]] = OrderedDict()
        self._wakeup = asyncio.Event()
        self._closed = False

    def offer(self, event: TaskEvent) -> None:
        if self._closed or (self._statuses and event.status not in self._statuses):
            return
        queue = self._pending.get(event.task_id)
        if queue is None:
            self._pending[event.task_id] = [event]
        elif queue[-1].status is event.status and not event.status.ends_stream:
            queue[-1] = event  # same state, newer numbers: the older progress is not worth delivering
        else:
            queue.append(event)
            if len(queue) > MAX_PENDING_PER_TASK:
                droppable = next((i for i, e in enumerate(queue[:-1]) if not e.status.ends_stream), 0)
                del queue[droppable]
        self._wakeup.set()

    def discard_pending(self, task_ids: Iterable[str] | None = None) -> None:
        """Forget unread events (of `task_ids` only, if given): a fresh load already shows them."""
        if task_ids is None:
            self._pending.clear()
            return
        for task_id in task_ids:
            self._pending.pop(task_id, None)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._broker._unsubscribe(self)
            self._wakeup.set()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> TaskEvent:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        task_id, queue = next(iter(self._pending.items()))
        event = queue.pop(0)
        if queue:
            self._pending.move_to_end(task_id)  # round-robin between tasks for per-user watchers
        else:
            del self._pending[task_id]
        return event


class ProgressBroker:
    """Fan-out of TaskEvents to subscriptions by task id and by user id."""

    def __init__(self) -> None:
        self._by_task: dict[str, set[Subscription]] = {}
        self._by_user: dict[str, set[Subscription]] = {}
        self._latest: OrderedDict[str, TaskEvent] = OrderedDict()

    def publish(self, event: TaskEvent) -> None:
        self._latest[event.task_id] = event
        self._latest.move_to_end(event.task_id)
        if len(self._latest) > MAX_REMEMBERED:
            self._latest.popitem(last=False)
        for sub in (*self._by_task.get(event.task_id, ()), *self._by_user.get(event.user_id, ())):
            sub.offer(event)

    def latest(self, task_id: str) -> TaskEvent | None:
        return self._latest.get(task_id)

    def subscribe(
        self, *, task_id: str | None = None, user_id: str | None = None, statuses: Iterable[TaskStatus] = ()
    ) -> Subscription:
        if (task_id is None) == (user_id is None):
            raise ValueError("subscribe to one task or to one user's tasks")
        sub = Subscription(self, task_id, user_id, frozenset(statuses))
        if task_id is not None:
            self._by_task.setdefault(task_id, set()).add(sub)
        else:
            assert user_id is not None
            self._by_user.setdefault(user_id, set()).add(sub)
        return sub

    def close_all(self) -> None:
        """End every subscription (server shutdown): open watch streams finish instead of holding the grace."""
        for index in (self._by_task, self._by_user):
            for subs in list(index.values()):
                for sub in list(subs):
                    sub.close()

    def subscriber_count(self) -> int:
        return sum(map(len, self._by_task.values())) + sum(map(len, self._by_user.values()))

    def _unsubscribe(self, sub: Subscription) -> None:
        index, key = (self._by_task, sub.task_id) if sub.task_id is not None else (self._by_user, sub.user_id)
        assert key is not None
        subs = index.get(key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del index[key]


def current_event(broker: ProgressBroker, task: Task) -> TaskEvent:
    """The freshest view of a task just loaded: the broker's last event if it shows the stored status (its
    counters are newer than the throttled flush). With another status, the newer of the two: state changes
    are persisted (update_time) before they are published, so an event older than the row is stale (say,
    the task was reset by an UpdateTask of its resource_url after it FAILED) and must not end a new stream
    at once, while an event newer than the row shows a change committed after the row was read (a cancel
    racing the load): dropping it would leave the watcher on the old state for good."""
    latest = broker.latest(task.id)
    if latest is None:
        return TaskEvent.of(task)
    if latest.status is task.status or latest.event_time > task.update_time:
        return latest
    return TaskEvent.of(task)


async def watch_task(
    broker: ProgressBroker, task_id: str, load: Callable[[], Awaitable[Task]]
) -> AsyncGenerator[TaskEvent, None]:
    """The stream of StartTask/RetryTask/WatchTask: the current state at once, then events until one
    shows a terminal state or PAUSED. `load` reads the task (and checks ownership: it may raise NotFound)."""
    with broker.subscribe(task_id=task_id) as sub:
        task = await load()
        # Subscribed before loading: whatever arrived meanwhile is no newer than the broker's latest.
        first = current_event(broker, task)
        sub.discard_pending()
        yield first
        if first.status.ends_stream:
            return
        async for event in sub:
            yield event
            if event.status.ends_stream:
                return


async def watch_user(
    broker: ProgressBroker,
    user_id: str,
    load: Callable[[], Awaitable[list[Task]]],
    statuses: Iterable[TaskStatus] = (),
) -> AsyncGenerator[TaskEvent, None]:
    """The stream of WatchTasks: each matching task's current state, then every event; never ends by itself."""
    wanted = frozenset(statuses)
    with broker.subscribe(user_id=user_id, statuses=wanted) as sub:
        tasks = await load()
        # What arrived meanwhile for a loaded task is no newer than current_event's view of it; a task the
        # load did not return (created, or moved into `statuses`, after the read) keeps its events.
        sub.discard_pending(task.id for task in tasks)
        for task in tasks:
            first = current_event(broker, task)
            if not wanted or first.status in wanted:
                yield first
        async for event in sub:
            yield event
