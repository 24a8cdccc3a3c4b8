"""A blocking facade over :class:`~clients.aio.AsyncClient` for scripts and notebooks.

The async client runs on an event loop in a private daemon thread; each method here waits for its result.
Methods, arguments, results and errors are exactly the async client's.

>>> from clients.sync import connect
>>> with connect("127.0.0.1:50051", "127.0.0.1:50052") as client:
...     client.login("ada@example.com", "correct horse")
...     for task in client.iter_tasks():
...         print(task.id, task.status)
...     with contextlib.closing(client.watch(task.id)) as events:
...         for event in events:
...             print(f"{event.progress:.0%}")
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import grpc

from clients import aio
from clients._transport import RetryPolicy
from clients.aio import AsyncClient
from clients.tokens import TokenStore

P = ParamSpec("P")
T = TypeVar("T")


class _LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="mediadl-client-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("the sync mediadl client cannot be called from its own event loop")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            # Ctrl-C while waiting: stop the call too instead of leaving it running in the background.
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def _blocking(fn: Callable[Concatenate[AsyncClient, P], Awaitable[T]]) -> Callable[Concatenate[Client, P], T]:
    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        async def call() -> T:
            return await fn(self.async_client, *args, **kwargs)

        return self._loop.run(call())

    method.__name__, method.__doc__ = fn.__name__, fn.__doc__
    return method


def _blocking_iter(
    fn: Callable[Concatenate[AsyncClient, P], AsyncIterator[T]],
) -> Callable[Concatenate[Client, P], Generator[T, None, None]]:
    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> Generator[T, None, None]:
        return self._iterate(fn(self.async_client, *args, **kwargs))

    method.__name__, method.__doc__ = fn.__name__, fn.__doc__
    return method


class Client:
    """Blocking mediadl client; see :class:`~clients.aio.AsyncClient` for every method's documentation.

    Streams (start, retry, watch, watch_all) and iter_* helpers return plain iterators; close a stream
    you leave early with ``contextlib.closing`` (or ``.close()``) so its RPC ends at once.
    """

    def __init__(self, loop: _LoopThread, async_client: AsyncClient) -> None:
        self._loop = loop
        self.async_client = async_client

    @property
    def is_logged_in(self) -> bool:
        return self.async_client.is_logged_in

    @property
    def tokens(self) -> TokenStore:
        return self.async_client.tokens

    register = _blocking(AsyncClient.register)
    login = _blocking(AsyncClient.login)
    logout = _blocking(AsyncClient.logout)
    refresh = _blocking(AsyncClient.refresh)
    whoami = _blocking(AsyncClient.whoami)
    update_me = _blocking(AsyncClient.update_me)
    change_password = _blocking(AsyncClient.change_password)
    get_user = _blocking(AsyncClient.get_user)
    list_users = _blocking(AsyncClient.list_users)
    iter_users = _blocking_iter(AsyncClient.iter_users)
    update_user = _blocking(AsyncClient.update_user)

    create_task = _blocking(AsyncClient.create_task)
    list_tasks = _blocking(AsyncClient.list_tasks)
    iter_tasks = _blocking_iter(AsyncClient.iter_tasks)
    get_task = _blocking(AsyncClient.get_task)
    update_task = _blocking(AsyncClient.update_task)
    delete_task = _blocking(AsyncClient.delete_task)
    pause = _blocking(AsyncClient.pause)
    resume = _blocking(AsyncClient.resume)
    cancel = _blocking(AsyncClient.cancel)
    start = _blocking_iter(AsyncClient.start)
    retry = _blocking_iter(AsyncClient.retry)
    watch = _blocking_iter(AsyncClient.watch)
    watch_all = _blocking_iter(AsyncClient.watch_all)

    create_failure = _blocking(AsyncClient.create_failure)
    list_failures = _blocking(AsyncClient.list_failures)
    list_task_failures = _blocking(AsyncClient.list_task_failures)
    iter_failures = _blocking_iter(AsyncClient.iter_failures)
    iter_task_failures = _blocking_iter(AsyncClient.iter_task_failures)
    get_failure = _blocking(AsyncClient.get_failure)
    retry_failure = _blocking(AsyncClient.retry_failure)
    abandon_failure = _blocking(AsyncClient.abandon_failure)

    create_video = _blocking(AsyncClient.create_video)
    list_task_videos = _blocking(AsyncClient.list_task_videos)
    iter_task_videos = _blocking_iter(AsyncClient.iter_task_videos)
    get_video = _blocking(AsyncClient.get_video)

    def _iterate(self, source: AsyncIterator[T]) -> Generator[T, None, None]:
        async def step() -> T:
            return await anext(source)

        try:
            while True:
                try:
                    yield self._loop.run(step())
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                self._loop.run(aclose())

    def close(self) -> None:
        """Close the channels and stop the client's thread."""
        try:
            self._loop.run(self.async_client.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def connect(
    auth_addr: str = aio.DEFAULT_AUTH_ADDR,
    download_addr: str = aio.DEFAULT_DOWNLOAD_ADDR,
    *,
    tokens: TokenStore | None = None,
    timeout: float = aio.DEFAULT_TIMEOUT,
    stream_timeout: float | None = None,
    retry: RetryPolicy | None = RetryPolicy(),
    credentials: grpc.ChannelCredentials | None = None,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> Client:
    """Blocking :func:`clients.aio.connect`; same arguments.

    >>> client = connect(tokens=FileTokenStore("tokens.json"))
    """
    loop = _LoopThread()
    try:
        async_client = loop.run(
            aio.connect(
                auth_addr,
                download_addr,
                tokens=tokens,
                timeout=timeout,
                stream_timeout=stream_timeout,
                retry=retry,
                credentials=credentials,
                interceptors=interceptors,
            )
        )
    except BaseException:
        loop.stop()
        raise
    return Client(loop, async_client)
