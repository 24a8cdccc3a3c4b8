"""Error mapping over the wire: a real gRPC server built with the shared server kit raises each status,
and the client turns it into its exception tree with reason and field violations; UNAVAILABLE is retried."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import pytest

from clients import (
    AlreadyExistsError,
    AsyncClient,
    AuthenticationError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    MediadlError,
    MemoryTokenStore,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RetryPolicy,
    Tokens,
    UnavailableError,
    UnimplementedError,
    connect,
)
from clients.errors import FieldViolation
from mediadl.download.v1 import download_pb2 as pb
from mediadl.download.v1 import download_pb2_grpc
from mediadl_common import errors as domain
from mediadl_common.grpc_status import abort, make_status
from mediadl_common.interceptors import ErrorBoundaryInterceptor
from mediadl_common.server import start_server

SERVICE = "mediadl.download.v1.DownloadService"

# task_id -> what the server raises for GetTask
RAISES: dict[str, Exception] = {
    "not-found": domain.NotFound("task not found"),
    "exists": domain.AlreadyExists("task already exists"),
    "precondition": domain.FailedPrecondition("task is COMPLETED; cannot pause"),
    "denied": domain.PermissionDenied("not yours"),
    "expired": domain.Unauthenticated("token expired", reason=domain.CREDENTIALS_EXPIRED),
    "invalid": domain.InvalidArgument(
        [domain.FieldViolation("video_id", "must be a UUID"), domain.FieldViolation("liveroom_id", "too long")]
    ),
    "crash": RuntimeError("unexpected bug with password=hunter2"),
}


class FaultyDownloads(download_pb2_grpc.DownloadServiceServicer):  # type: ignore[misc]
    """GetTask fails as RAISES says; CancelTask answers UNAVAILABLE `flaky` times, then succeeds."""

    def __init__(self) -> None:
        self.flaky = 0
        self.cancel_calls = 0
        self.never = asyncio.Event()

    async def GetTask(self, request: pb.GetTaskRequest, context: Any) -> pb.GetTaskResponse:  # noqa: N802
        if request.task_id == "exhausted":
            await abort(context, make_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", reason="RATE_LIMITED"))
        if request.task_id == "hang":
            await self.never.wait()  # until the client's deadline passes
        raise RAISES[request.task_id]

    async def CancelTask(self, request: pb.CancelTaskRequest, context: Any) -> pb.CancelTaskResponse:  # noqa: N802
        self.cancel_calls += 1
        if self.cancel_calls <= self.flaky:
            raise domain.Unavailable("database restarting")
        return pb.CancelTaskResponse(task=pb.Task(id=request.task_id, status=pb.TASK_STATUS_CANCELLED))

    async def WatchTask(self, request: pb.WatchTaskRequest, context: Any) -> AsyncIterator[pb.WatchTaskResponse]:  # noqa: N802
        yield pb.WatchTaskResponse(event=pb.TaskEvent(task_id=request.task_id, status=pb.TASK_STATUS_PROCESSING))
        raise domain.FailedPrecondition("task was deleted")


@pytest.fixture
async def faulty() -> AsyncIterator[tuple[FaultyDownloads, str]]:
    servicer = FaultyDownloads()  # type: ignore[abstract]  # only the methods under test exist

    def register(server: grpc.aio.Server) -> Sequence[str]:
        download_pb2_grpc.add_DownloadServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
        return [SERVICE]

    running = await start_server("127.0.0.1:0", register, [ErrorBoundaryInterceptor()])
    yield servicer, f"127.0.0.1:{running.port}"
    await running.stop(0)


async def client_for(address: str, **options: Any) -> AsyncClient:
    # No auth interceptor on this server: any stored token will do.
    return await connect(address, address, tokens=MemoryTokenStore(Tokens("access", "refresh")), **options)


@pytest.mark.parametrize(
    ("task_id", "error_class", "code"),
    [
        ("not-found", NotFoundError, "NOT_FOUND"),
        ("exists", AlreadyExistsError, "ALREADY_EXISTS"),
        ("precondition", FailedPreconditionError, "FAILED_PRECONDITION"),
        ("denied", PermissionDeniedError, "PERMISSION_DENIED"),
        ("invalid", InvalidArgumentError, "INVALID_ARGUMENT"),
        ("crash", InternalError, "INTERNAL"),
        ("exhausted", ResourceExhaustedError, "RESOURCE_EXHAUSTED"),
    ],
)
async def test_each_status_maps_to_its_exception(
    faulty: tuple[FaultyDownloads, str], task_id: str, error_class: type[MediadlError], code: str
) -> None:
    async with await client_for(faulty[1]) as client:
        with pytest.raises(error_class) as caught:
            await client.get_task(task_id)
    assert type(caught.value) is error_class
    assert caught.value.code == code
    assert caught.value.message
    assert "hunter2" not in str(caught.value)


async def test_reason_and_field_violations_are_parsed(faulty: tuple[FaultyDownloads, str]) -> None:
    async with await client_for(faulty[1]) as client:
        with pytest.raises(InvalidArgumentError) as invalid:
            await client.get_task("invalid")
        with pytest.raises(ResourceExhaustedError) as exhausted:
            await client.get_task("exhausted")
    assert invalid.value.field_violations == (
        FieldViolation("video_id", "must be a UUID"),
        FieldViolation("liveroom_id", "too long"),
    )
    assert exhausted.value.reason == "RATE_LIMITED"
    assert exhausted.value.metadata == {}


async def test_expired_credentials_refresh_fails_cleanly_without_an_auth_server(
    faulty: tuple[FaultyDownloads, str],
) -> None:
    # CREDENTIALS_EXPIRED triggers one refresh; the "auth server" here has no AuthService, so the refresh
    # itself fails: the caller gets that error, not a loop of retries.
    async with await client_for(faulty[1]) as client:
        with pytest.raises(UnimplementedError):
            await client.get_task("expired")


async def test_unimplemented_service() -> None:
    # A server with only health and reflection: what an older or misconfigured deployment looks like.
    running = await start_server("127.0.0.1:0", lambda server: [], [])
    try:
        async with await client_for(f"127.0.0.1:{running.port}") as client:
            with pytest.raises(UnimplementedError):
                await client.list_tasks()
    finally:
        await running.stop(0)


async def test_deadline_exceeded(faulty: tuple[FaultyDownloads, str]) -> None:
    async with await client_for(faulty[1]) as client:
        with pytest.raises(DeadlineExceededError) as caught:
            await client.get_task("hang", timeout=0.2)
    assert isinstance(caught.value, UnavailableError)  # scripts may treat both as "try later"


async def test_unavailable_is_retried_by_the_channel_service_config(faulty: tuple[FaultyDownloads, str]) -> None:
    servicer, address = faulty
    servicer.flaky = 2
    async with await client_for(address, retry=RetryPolicy(max_attempts=4, initial_backoff=0.01)) as client:
        task = await client.cancel("t1")
    assert task.status.value == "CANCELLED"
    assert servicer.cancel_calls == 3


async def test_without_retry_policy_unavailable_surfaces(faulty: tuple[FaultyDownloads, str]) -> None:
    servicer, address = faulty
    servicer.flaky = 1
    async with await client_for(address, retry=None) as client:
        with pytest.raises(UnavailableError) as caught:
            await client.cancel("t1")
    assert caught.value.reason == "UNAVAILABLE"
    assert servicer.cancel_calls == 1


async def test_server_down_is_unavailable() -> None:
    with socket_bound_then_closed() as address:
        async with await client_for(address, retry=RetryPolicy(max_attempts=2, initial_backoff=0.01)) as client:
            with pytest.raises(UnavailableError):
                await client.get_task("x", timeout=5)


async def test_stream_error_after_first_event(faulty: tuple[FaultyDownloads, str]) -> None:
    async with await client_for(faulty[1]) as client:
        seen = []
        with pytest.raises(FailedPreconditionError, match="deleted"):
            async for event in client.watch("t9"):
                seen.append(event)
    assert [(e.task_id, e.status.value) for e in seen] == [("t9", "PROCESSING")]


async def test_not_logged_in_is_refused_before_any_call() -> None:
    async with await connect("127.0.0.1:9", "127.0.0.1:9") as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.get_task("x")
    assert caught.value.reason == "CREDENTIALS_MISSING"


class socket_bound_then_closed:  # noqa: N801 - used as a context manager like contextlib helpers
    """An address nothing listens on: bind a port, then close it."""

    def __enter__(self) -> str:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        return f"127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        return None
