"""TaskEventStream: an async iterator of TaskEvents that can also be closed, or used with ``async with``."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType

from clients.models import TaskEvent


class TaskEventStream(AsyncIterator[TaskEvent]):
    """Progress events of one RPC (StartTask, RetryTask, WatchTask or WatchTasks).

    Iterate it directly, or use ``async with`` so that leaving the block early always ends the RPC::

        async with client.watch(task_id) as events:
            async for event in events:
                print(f"{event.progress:.0%}")
                if event.progress > 0.5:
                    break           # the stream is closed; the download goes on on the server

    Closing a stream never stops a download: downloads belong to the server.
    """

    def __init__(self, events: AsyncGenerator[TaskEvent, None]) -> None:
        self._events = events

    def __aiter__(self) -> TaskEventStream:
        return self

    async def __anext__(self) -> TaskEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """End the RPC now; idempotent."""
        await self._events.aclose()

    async def __aenter__(self) -> TaskEventStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
