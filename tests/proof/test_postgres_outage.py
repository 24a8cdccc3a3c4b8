"""PostgreSQL goes away while both servers run: calls fail cleanly with UNAVAILABLE, never INTERNAL; when it is
back, calls work again within seconds and nothing written before the outage is lost.

The servers run against a private instance this test starts and stops (tests/proof/private_postgres.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from mediadl.auth.v1 import auth_pb2
from mediadl.download.v1 import download_pb2 as pb
from mediadl_common.server import RunningServer
from tests.auth.helpers import AuthClient, auth_settings, bearer, running_auth_server
from tests.download.api import DownloadApi, download_settings, new_id, running_download_server
from tests.proof.private_postgres import PrivatePostgres, require_postgres_bin
from tests.proof.statuses import refused

pytestmark = pytest.mark.postgres
RECOVERY_DEADLINE = 30.0  # seconds; generous for a loaded machine, the report prints the real figure


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(require_postgres_bin())
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


@dataclass
class Stack:
    auth: AuthClient
    api: DownloadApi


@pytest.fixture
async def stack(private_postgres: PrivatePostgres, tmp_path: Path) -> AsyncIterator[Stack]:
    auth_url = private_postgres.create_database("auth")
    download_url = private_postgres.create_database("download")
    async with AsyncExitStack() as exits:
        # Small pools: every pooled connection dies in the outage, and all of them must come back.
        auth = await exits.enter_async_context(running_auth_server(auth_settings(auth_url, AUTH_DB_POOL_SIZE="2")))
        settings = download_settings(download_url, tmp_path / "storage", DOWNLOAD_DB_POOL_SIZE="2")
        api = await exits.enter_async_context(running_download_server(settings))
        yield Stack(auth, api)


@dataclass
class Before:
    """What was written before the outage, to be found intact after it."""

    email: str
    refresh_token: str
    user_id: str
    tasks: list[pb.Task]
    running: pb.Task
    failure: pb.Failure
    video: pb.Video


async def write_some(stack: Stack) -> Before:
    user, session = await stack.auth.new_session()
    owner = new_id()
    md = stack.api.auth(owner)
    tasks = [await stack.api.create_task(owner) for _ in range(3)]
    failure = (
        await stack.api.stub.CreateFailure(
            pb.CreateFailureRequest(
                task_id=tasks[0].id, segment_index=2, segment_url="https://cdn.example.com/2.ts", error_type="HTTP"
            ),
            metadata=md,
        )
    ).failure
    video = (
        await stack.api.stub.CreateVideo(
            pb.CreateVideoRequest(task_id=tasks[1].id, file_path=f"hls/{tasks[1].id}/v.mp4", file_size=1, format="mp4"),
            metadata=md,
        )
    ).video
    # A started download (its DNS never answers in tests): the engine holds it across the outage.
    stream = stack.api.stub.StartTask(pb.StartTaskRequest(task_id=tasks[2].id), metadata=md)
    first = await stream.read()
    stream.cancel()
    assert first.event.status == pb.TASK_STATUS_PROCESSING
    running = (await stack.api.stub.GetTask(pb.GetTaskRequest(task_id=tasks[2].id), metadata=md)).task
    return Before(user.email, session.refresh_token, owner, tasks, running, failure, video)


def outage_calls(stack: Stack, before: Before) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One call of each kind that needs the database: reads, writes, logins, token rotation."""
    md = stack.api.auth(before.user_id)
    api, auth = stack.api.stub, stack.auth.stub
    task_id = before.tasks[0].id
    return {
        "Login": lambda: auth.Login(auth_pb2.LoginRequest(email=before.email, password="correct horse battery")),
        "Register": lambda: stack.auth.register(),
        "RefreshToken": lambda: auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=before.refresh_token)),
        "GetTask": lambda: api.GetTask(pb.GetTaskRequest(task_id=task_id), metadata=md),
        "ListTasks": lambda: api.ListTasks(pb.ListTasksRequest(), metadata=md),
        "CreateTask": lambda: stack.api.create_task(before.user_id),
        "UpdateTask": lambda: api.UpdateTask(
            pb.UpdateTaskRequest(task_id=task_id, liveroom_title="changed in the outage"), metadata=md
        ),
        "ListFailures": lambda: api.ListFailures(pb.ListFailuresRequest(), metadata=md),
        "GetVideo": lambda: api.GetVideo(pb.GetVideoRequest(video_id=before.tasks[1].video_id), metadata=md),
    }


async def wait_until_ok(call: Callable[[], Awaitable[Any]], deadline: float) -> float:
    """Seconds until `call` succeeds; only UNAVAILABLE may be seen on the way. Polls: no event says "back"."""
    started = time.monotonic()
    while True:
        try:
            await call()
            return time.monotonic() - started
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.UNAVAILABLE, (err.code(), err.details())
            assert time.monotonic() - started < deadline, f"still failing after {deadline:.0f} s: {err.details()}"
            await asyncio.sleep(0.2)


def internal_errors(running: RunningServer) -> list[str]:
    return [
        f"{s.labels['method']} x{s.value:g}"
        for metric in running.metrics.registry.collect()
        for s in metric.samples
        if s.name == "mediadl_rpc_requests_total" and s.labels.get("code") in ("INTERNAL", "UNKNOWN")
    ]


async def outage_cycle(stack: Stack, private_postgres: PrivatePostgres, mode: str) -> float:
    """Write, stop PostgreSQL (`mode`), check every call fails cleanly, restart, check recovery and the data."""
    before = await write_some(stack)
    calls = outage_calls(stack, before)

    await private_postgres.astop(mode)
    during = {name: await refused(call()) for name, call in calls.items()}
    wrong = {name: r for name, r in during.items() if r.code != grpc.StatusCode.UNAVAILABLE}
    assert not wrong, wrong
    assert all("Traceback" not in r.message and "psycopg" not in r.message for r in during.values())

    await private_postgres.astart()
    recovery = {name: await wait_until_ok(call, RECOVERY_DEADLINE) for name, call in calls.items()}

    # Nothing written before the outage is lost or changed, apart from the UpdateTask just replayed.
    md = stack.api.auth(before.user_id)
    listed = (await stack.api.stub.ListTasks(pb.ListTasksRequest(), metadata=md)).tasks
    assert {t.id for t in before.tasks} <= {t.id for t in listed}
    assert len(listed) == len(before.tasks) + 1  # the CreateTask that succeeded after the restart
    again = (await stack.api.stub.GetTask(pb.GetTaskRequest(task_id=before.running.id), metadata=md)).task
    assert (again.id, again.resource_url, again.create_time) == (
        before.running.id,
        before.running.resource_url,
        before.running.create_time,
    )
    failure = (await stack.api.stub.GetFailure(pb.GetFailureRequest(failure_id=before.failure.id), metadata=md)).failure
    assert failure == before.failure
    video = (await stack.api.stub.GetVideo(pb.GetVideoRequest(video_id=before.tasks[1].video_id), metadata=md)).video
    assert video == before.video
    me = await stack.auth.login(before.email)
    assert me.user.email == before.email
    await stack.auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(me.access_token))
    return max(recovery.values())


async def test_rpcs_fail_cleanly_during_outages_and_recover_after(
    stack: Stack, private_postgres: PrivatePostgres, capsys: pytest.CaptureFixture[str]
) -> None:
    # A clean shutdown (connections told to go) and a crash (connections just gone), one after the other.
    for mode in ("fast", "immediate"):
        seconds = await outage_cycle(stack, private_postgres, mode)
        with capsys.disabled():
            print(f"\nPostgreSQL stop -m {mode}: calls worked again {seconds:.2f} s after the restart")
    assert internal_errors(stack.auth.running) == []
    assert internal_errors(stack.api.running) == []
