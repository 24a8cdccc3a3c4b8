"""Property-based fuzzing of every RPC of both services, on SQLite and PostgreSQL, with good and bad tokens.

Whatever the request: never INTERNAL or UNKNOWN, no Python exception text in a status message, and the
servers keep serving (health after each RPC's batch; no INTERNAL counted by the servers at the end).
The servers run in-process on a loop in a background thread, so hypothesis drives plain functions.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import message, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

from auth_server.adapters.tokens import JwtIssuer
from mediadl.auth.v1 import auth_pb2
from mediadl.download.v1 import download_pb2 as pb
from mediadl_common.config import JwtSettings
from mediadl_common.errors import MAX_MESSAGE_BYTES
from mediadl_common.server import RunningServer
from tests.auth.helpers import auth_settings, running_auth_server
from tests.conftest import IN_CI, create_postgres_database, drop_postgres_database
from tests.download.api import download_settings, new_id, running_download_server

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - until hypothesis is in the dev extras everywhere
    if IN_CI:
        raise
    pytest.skip("hypothesis is not installed (pip install hypothesis)", allow_module_level=True)

from tests.proof.fuzz_strategies import Known, message_strategy  # after the guard: it needs hypothesis

# The servers run in another thread while hypothesis draws, and their retry jitter uses the `random` module:
# hypothesis notices the global random state move under it and warns, though no strategy touched it.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
T = TypeVar("T")
AUTH_SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
DOWNLOAD_SERVICE = pb.DESCRIPTOR.services_by_name["DownloadService"]
# Per RPC and database: the file stays under a minute on a loaded 2-CPU machine. Go deeper with e.g.
# MEDIADL_FUZZ_EXAMPLES=500 (every example is independent; failures print a reproducing blob).
EXAMPLES = int(os.environ.get("MEDIADL_FUZZ_EXAMPLES", "30"))
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
# What would betray internals: a traceback, a source path, an exception class, a driver's words.
LEAK = re.compile(
    r"Traceback|File \"|\.py\b|\b[A-Z][A-Za-z]*(Error|Exception)\b|sqlalchemy|psycopg|sqlite3|asyncio|"
    r"\bline \d+|object at 0x",
)
Metadata = tuple[tuple[str, str], ...]


class LoopThread:
    """An event loop in a daemon thread; run() submits a coroutine and waits for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fuzz-servers", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()


@dataclass
class Target:
    """One running server, the credentials to try on it, and values that exist on it."""

    service: ServiceDescriptor
    running: RunningServer
    channel: grpc.aio.Channel
    credentials: list[Metadata]
    known: Known = field(default_factory=Known)


class Servers:
    """Both targets and the loop they run on (a plain class: hypothesis prints dataclasses field by field)."""

    def __init__(self, loop: LoopThread, auth: Target, download: Target) -> None:
        self.loop, self.auth, self.download = loop, auth, download

    def __repr__(self) -> str:  # hypothesis prints the test's arguments: keep them short
        return f"Servers(auth :{self.auth.running.port}, download :{self.download.running.port})"


def token_variants(issuer: JwtIssuer, jwt: JwtSettings, owner: str) -> list[Metadata]:
    """Every kind of credential: good ones (owner with data, a stranger) and each way of being wrong."""

    def bearer(token: str) -> Metadata:
        return (("authorization", f"Bearer {token}"),)

    def access(sub: str, ttl: int = 300, of: JwtIssuer = issuer) -> str:
        return of.issue(sub=sub, type="access", ttl_seconds=ttl)[0]

    past = JwtIssuer(jwt, clock=lambda: time.time() - 7200)
    forged = JwtIssuer(replace(jwt, secret_key="x" * 64))
    refresh = issuer.issue(sub=owner, type="refresh", ttl_seconds=300, family="f")[0]
    return [
        bearer(access(owner)),
        bearer(access(new_id())),
        bearer(access("not-a-uuid")),
        bearer(access("x" * 500)),
        bearer(access("' OR '1'='1")),
        bearer(access(owner, ttl=60, of=past)),
        bearer(access(owner, of=forged)),
        bearer(refresh),
        bearer("abc.def.ghi"),
        bearer("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
        bearer("a" * 4000),
        (("authorization", "Basic dXNlcjpwYXNz"),),
        (("authorization", "Bearer"),),
        (("authorization", f"bearer  {access(owner)}"),),
        (),
    ]


async def seed_download(api: Any, owner: str) -> Known:
    md = api.auth(owner)
    tasks = [
        await api.create_task(owner),
        await api.create_task(owner, resource_url="https://cdn.example.com/v.mp4", resource_type=pb.RESOURCE_TYPE_MP4),
        await api.create_task(
            owner, resource_url="https://cdn.example.com/i.jpg", resource_type=pb.RESOURCE_TYPE_IMAGE
        ),
    ]
    failures = []
    for index in (1, 2):
        request = pb.CreateFailureRequest(
            task_id=tasks[0].id,
            segment_index=index,
            segment_url=f"https://cdn.example.com/seg{index}.ts",
            error_type="HTTP_ERROR",
            error_message="404",
            http_status=404,
        )
        failures.append((await api.stub.CreateFailure(request, metadata=md)).failure)
    video = (
        await api.stub.CreateVideo(
            pb.CreateVideoRequest(
                task_id=tasks[1].id, file_path=f"hls/{tasks[1].id}/a.mp4", file_size=10, format="mp4"
            ),
            metadata=md,
        )
    ).video
    tokens = [
        (await api.stub.ListTasks(pb.ListTasksRequest(page_size=1), metadata=md)).next_page_token,
        (await api.stub.ListFailures(pb.ListFailuresRequest(page_size=1), metadata=md)).next_page_token,
        (
            await api.stub.ListTaskFailures(pb.ListTaskFailuresRequest(task_id=tasks[0].id, page_size=1), metadata=md)
        ).next_page_token,
    ]
    ids = [t.id for t in tasks] + [t.video_id for t in tasks] + [f.id for f in failures] + [video.id, owner]
    return Known(ids=ids, page_tokens=[t for t in tokens if t])


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def servers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    kind = str(request.param)
    folder = tmp_path_factory.mktemp(f"fuzz-{kind}")
    urls = (
        [create_postgres_database(), create_postgres_database()]
        if kind == "postgresql"
        else [f"sqlite:///{folder / 'auth.db'}", f"sqlite:///{folder / 'download.db'}"]
    )
    loop = LoopThread()
    stack = AsyncExitStack()

    async def start() -> Servers:
        auth = await stack.enter_async_context(running_auth_server(auth_settings(urls[0])))
        api = await stack.enter_async_context(running_download_server(download_settings(urls[1], Path(folder, "st"))))
        user = await auth.register(email="owner@example.com")
        login = await auth.login(user.email)
        auth_issuer = JwtIssuer(auth.settings.jwt)
        auth_known = Known(ids=[user.id, new_id()], emails=[user.email], tokens=[login.refresh_token])
        owner = new_id()
        return Servers(
            loop,
            Target(
                AUTH_SERVICE,
                auth.running,
                auth.channel,
                token_variants(auth_issuer, auth.settings.jwt, user.id),
                auth_known,
            ),
            Target(
                DOWNLOAD_SERVICE,
                api.running,
                api.channel,
                token_variants(api.issuer, api.settings.jwt, owner),
                await seed_download(api, owner),
            ),
        )

    try:
        yield loop.run(start())
    finally:
        loop.run(stack.aclose())
        loop.close()
        for url in urls:
            if kind == "postgresql":
                drop_postgres_database(url)


# A stream must answer (a message, its end or an error) within STREAM_ANSWER seconds: its first message is
# the task's state, sent at once, so staying silent until then fails. WatchTasks is the exception: a caller
# with no tasks gets nothing until one changes, so it may stay silent, and is read for SILENT_WATCH seconds.
# A stream that has answered is read until it ends; one still open after FOLLOW_QUIET seconds without a
# further message is following a task that does not change.
STREAM_ANSWER = 20.0
SILENT_WATCH = 1.5
FOLLOW_QUIET = 1.0
STREAM_MESSAGES = 64  # enough for any seeded task's events or a small ReadVideo


async def call_once(
    target: Target, method: MethodDescriptor, request: message.Message, md: Metadata
) -> grpc.aio.AioRpcError | None:
    """One call; a stream is read until it ends, or until it is plainly following (see STREAM_ANSWER)."""
    path = f"/{target.service.full_name}/{method.name}"
    if not method.server_streaming:
        unary = target.channel.unary_unary(path, request_serializer=_serialize, response_deserializer=bytes)
        try:
            await unary(request, metadata=md, timeout=30)
        except grpc.aio.AioRpcError as err:
            return err
        return None
    call = target.channel.unary_stream(path, request_serializer=_serialize, response_deserializer=bytes)(
        request, metadata=md, timeout=STREAM_ANSWER + 30
    )
    try:
        return await _read_stream(call, method.name, may_stay_silent=method.name == "WatchTasks")
    finally:
        call.cancel()


async def _read_stream(call: Any, name: str, *, may_stay_silent: bool) -> grpc.aio.AioRpcError | None:
    received = 0
    first = SILENT_WATCH if may_stay_silent else STREAM_ANSWER
    while received < STREAM_MESSAGES:
        reading = asyncio.ensure_future(call.read())
        done, _ = await asyncio.wait({reading}, timeout=first if received == 0 else FOLLOW_QUIET)
        if not done:
            call.cancel()
            with suppress(BaseException):
                await reading
            assert received or may_stay_silent, f"{name}: no message, no end and no status in {first:.0f} s"
            return None
        try:
            if reading.result() is grpc.aio.EOF:
                return None
        except grpc.aio.AioRpcError as err:
            return err
        received += 1
    return None


def _serialize(request: message.Message) -> bytes:
    return request.SerializeToString()


async def serving(target: Target) -> bool:
    reply = await health_pb2_grpc.HealthStub(target.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)  # type: ignore[no-untyped-call]
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def check(err: grpc.aio.AioRpcError | None, method: str) -> None:
    if err is None:
        return
    code, text = err.code(), err.details() or ""
    assert code not in FORBIDDEN, f"{method}: {code.name}: {text}"
    assert not LEAK.search(text), f"{method}: internals in the status message: {text[:300]!r}"
    # A message may quote the request, but never echo megabytes of it back.
    size = len(text.encode())
    assert size <= MAX_MESSAGE_BYTES + 64, f"{method}: a {size}-byte status message"


def fuzz(servers: Servers, which: str, name: str, data: st.DataObject) -> None:
    target: Target = getattr(servers, which)
    method = target.service.methods_by_name[name]
    request = data.draw(message_strategy(method.input_type, target.known), label="request")
    # Half the calls carry the owner's good token: past the interceptor is where most of the code is.
    md = data.draw(st.one_of(st.just(target.credentials[0]), st.sampled_from(target.credentials)), label="metadata")
    check(servers.loop.run(call_once(target, method, request, md)), name)
    assert servers.loop.run(serving(target)), f"{target.service.name} stopped serving after {name}"


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@pytest.mark.parametrize("name", list(AUTH_SERVICE.methods_by_name))
@FUZZ
@given(data=st.data())
def test_auth_rpc(servers: Servers, name: str, data: st.DataObject) -> None:
    fuzz(servers, "auth", name, data)


@pytest.mark.parametrize("name", list(DOWNLOAD_SERVICE.methods_by_name))
@FUZZ
@given(data=st.data())
def test_download_rpc(servers: Servers, name: str, data: st.DataObject) -> None:
    fuzz(servers, "download", name, data)


def huge_requests(method: MethodDescriptor) -> Iterator[message.Message]:
    """The request with one field at a time made as large as a request may be (just under 1 MiB)."""
    cls = message_factory.GetMessageClass(method.input_type)
    huge = "\u00e9" * 400_000  # 800 KB of UTF-8
    for fd in method.input_type.fields:
        request = cls()
        if fd.type == fd.TYPE_STRING:
            if fd.is_repeated:
                getattr(request, fd.name).append(huge)
            else:
                setattr(request, fd.name, huge)
        elif fd.message_type is not None and fd.message_type.full_name == "google.protobuf.FieldMask":
            getattr(request, fd.name).paths.append(huge)
        else:
            continue
        yield request


@pytest.mark.parametrize("which", ["auth", "download"])
def test_no_status_echoes_a_huge_field(servers: Servers, which: str) -> None:
    target: Target = getattr(servers, which)
    for method in target.service.methods:
        for request in huge_requests(method):
            err = servers.loop.run(call_once(target, method, request, target.credentials[0]))
            check(err, method.name)
            # Under the 1 MiB limit, so the server must answer it; RESOURCE_EXHAUSTED here means the reply's
            # trailers were too big for the client, which then drops the connection with every call on it.
            assert err is None or err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED, (method.name, err.details())


def test_servers_still_serve_and_counted_no_internal_error(servers: Servers) -> None:
    for target in (servers.auth, servers.download):
        assert servers.loop.run(serving(target))
        registry = target.running.metrics.registry
        for code in ("INTERNAL", "UNKNOWN"):
            bad = [
                s
                for metric in registry.collect()
                for s in metric.samples
                if s.name == "mediadl_rpc_requests_total" and s.labels.get("code") == code
            ]
            assert not bad, bad
