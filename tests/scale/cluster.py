"""Several `python -m download_server` processes on one PostgreSQL database and one storage directory, a gRPC
client per replica, and the origin streams the scale tests download (one copy of the HLS fixture per task)."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from auth_server.adapters.tokens import JwtIssuer
from download_server.adapters.orm import TaskRow
from mediadl.download.v1 import download_pb2 as pb
from mediadl.download.v1 import download_pb2_grpc
from mediadl_common.config import JwtSettings
from tests.conftest import ROOT
from tests.support.media import sha256
from tests.support.net import free_port, wait_serving
from tests.support.origin import Origin

SECRET = "scale-test-secret-" + "s3cr3t" * 8
USER = "scale-test-user"
END_STATES = {
    pb.TASK_STATUS_COMPLETED,
    pb.TASK_STATUS_PARTIAL_COMPLETED,
    pb.TASK_STATUS_FAILED,
    pb.TASK_STATUS_CANCELLED,
    pb.TASK_STATUS_PAUSED,
}
# Short leases and frequent claim passes: a dead replica's tasks move within a few seconds.
CLUSTER_ENV = {
    "DOWNLOAD_LEASE_SECONDS": "2",
    "DOWNLOAD_CLAIM_INTERVAL_SECONDS": "0.5",
    "DOWNLOAD_MAX_ACTIVE_TASKS": "2",
    # One user's tasks spread over the replicas here: the per-user cap (tested on its own) stays out of the way.
    "DOWNLOAD_MAX_ACTIVE_TASKS_PER_USER": "0",
    "DOWNLOAD_SEGMENT_CONCURRENCY": "1",  # one segment after another: a crash point a test can name
    "DOWNLOAD_SHUTDOWN_GRACE_SECONDS": "5",
    "DOWNLOAD_ALLOW_PRIVATE_NETWORKS": "true",  # the origin is on loopback
}


@dataclass
class Replica:
    name: str
    address: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    channel: grpc.aio.Channel | None = None
    stub: Any = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def claimed(self) -> list[str]:
        """Task ids this replica's log says it claimed, one entry per claim."""
        return [
            line.split("claimed task ", 1)[1].split()[0] for line in self.log().splitlines() if "claimed task " in line
        ]


@dataclass
class Cluster:
    database_url: str
    storage: Path
    replicas: dict[str, Replica] = field(default_factory=dict)
    user: str = USER  # whose tasks the clients create and watch (connected() picks a new one per test)

    def __getitem__(self, name: str) -> Replica:
        return self.replicas[name]

    def md(self) -> tuple[tuple[str, str]]:
        token, _ = JwtIssuer(JwtSettings(secret_key=SECRET)).issue(sub=self.user, type="access", ttl_seconds=600)
        return (("authorization", f"Bearer {token}"),)

    async def create(self, on: str, url: str, kind: str = "HLS") -> pb.Task:
        request = pb.CreateTaskRequest(
            video_id=str(uuid.uuid4()),
            liveroom_id="scale",
            resource_url=url,
            resource_type=f"RESOURCE_TYPE_{kind}",
        )
        task: pb.Task = (await self[on].stub.CreateTask(request, metadata=self.md())).task
        return task

    def start(self, on: str, task_id: str) -> Any:
        return self[on].stub.StartTask(pb.StartTaskRequest(task_id=task_id), metadata=self.md(), timeout=120)

    def watch(self, on: str, task_id: str) -> Any:
        return self[on].stub.WatchTask(pb.WatchTaskRequest(task_id=task_id), metadata=self.md(), timeout=120)

    async def get(self, on: str, task_id: str) -> pb.Task:
        task: pb.Task = (await self[on].stub.GetTask(pb.GetTaskRequest(task_id=task_id), metadata=self.md())).task
        return task

    async def leases(self) -> dict[str, tuple[str | None, str | None]]:
        """task id -> (lease_owner, lease_token) as stored: who runs (or last ran) each task."""

        def read() -> dict[str, tuple[str | None, str | None]]:
            engine = create_engine(self.database_url, poolclass=NullPool)
            try:
                with engine.connect() as conn:
                    rows = conn.execute(select(TaskRow.id, TaskRow.lease_owner, TaskRow.lease_token))
                    return {row.id: (row.lease_owner, row.lease_token) for row in rows}
            finally:
                engine.dispose()

        return await asyncio.to_thread(read)

    def segment_hashes(self, task_id: str, storage: Path | None = None) -> list[str]:
        folder = (storage or self.storage) / "hls" / task_id / "ts"
        return [sha256(p) for p in sorted(folder.iterdir(), key=lambda p: int(p.stem))]

    async def kill(self, name: str, sig: signal.Signals) -> int:
        replica = self.replicas[name]
        replica.proc.send_signal(sig)
        return await asyncio.to_thread(replica.proc.wait, 30)


def start_replicas(
    database_url: str,
    workdir: Path,
    names: tuple[str, ...] = ("a", "b", "c"),
    *,
    storage_dirs: str = "shared",
    **env: str,
) -> Cluster:
    """Blocking. Start the replicas together (they race to migrate: the advisory lock serialises them) and wait
    until each serves; stop_replicas() ends them. Connect clients with `connected`. With storage_dirs="own"
    each replica gets a work directory of its own (`storage-<name>`: with STORAGE_URL they share only the bucket)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DOWNLOAD_", "STORAGE_", "LOG_"))}
    storage = workdir / "storage"
    result = Cluster(database_url, storage)
    for name in names:
        address = f"127.0.0.1:{free_port()}"
        log_path = workdir / f"replica-{name}.log"
        values = {
            **clean,
            **CLUSTER_ENV,
            **env,
            "PYTHONPATH": str(ROOT),
            "JWT_SECRET_KEY": SECRET,
            "DOWNLOAD_DATABASE_URL": database_url,
            "DOWNLOAD_GRPC_ADDR": address,
            "DOWNLOAD_REPLICA_ID": f"replica-{name}",
            "STORAGE_DIR": str(workdir / f"storage-{name}" if storage_dirs == "own" else storage),
        }
        result.replicas[name] = Replica(name, address, _launch(values, workdir, log_path), log_path)
    try:
        for replica in result.replicas.values():
            wait_serving(replica.address)
    except BaseException:
        stop_replicas(result)
        raise
    return result


@asynccontextmanager
async def connected(replicas: Cluster) -> AsyncIterator[Cluster]:
    """A client on each replica (channels belong to the calling test's event loop), as a user of its own."""
    replicas.user = f"{USER}-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        for replica in replicas.replicas.values():
            replica.channel = await stack.enter_async_context(grpc.aio.insecure_channel(replica.address))
            replica.stub = download_pb2_grpc.DownloadServiceStub(replica.channel)  # type: ignore[no-untyped-call]
        yield replicas


@asynccontextmanager
async def cluster(
    database_url: str,
    workdir: Path,
    names: tuple[str, ...] = ("a", "b", "c"),
    *,
    storage_dirs: str = "shared",
    **env: str,
) -> AsyncIterator[Cluster]:
    """Replicas for one test: started, connected, and at the end stopped (SIGTERM, then SIGKILL if they linger)."""
    replicas = await asyncio.to_thread(
        functools.partial(start_replicas, database_url, workdir, names, storage_dirs=storage_dirs, **env)
    )
    try:
        async with connected(replicas) as ready:
            yield ready
    finally:
        await asyncio.to_thread(stop_replicas, replicas)


def _launch(env: dict[str, str], workdir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "download_server"], cwd=workdir, env=env, stdout=log_file, stderr=log_file
        )


def stop_replicas(cluster: Cluster) -> None:
    for replica in cluster.replicas.values():
        if replica.proc.poll() is None:
            replica.proc.send_signal(signal.SIGTERM)
    for replica in cluster.replicas.values():
        try:
            replica.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            replica.proc.kill()
            replica.proc.wait()


def hls_copies(origin: Origin, count: int, fixture: str = "hls_ts") -> list[str]:
    """`count` copies of an HLS fixture under distinct paths (s0/, s1/, ...), so the origin's counters tell
    each task's requests apart. Returns the playlist paths."""
    paths = []
    for k in range(count):
        shutil.copytree(origin.root / fixture, origin.root / f"s{k}")
        paths.append(f"s{k}/index.m3u8")
    return paths


def seg(stream: str, i: int) -> str:
    return stream.replace("index.m3u8", f"seg{i:02d}.ts")


async def events_until_end(call: Any, *, first: Callable[[pb.TaskEvent], None] | None = None) -> list[pb.TaskEvent]:
    """Every event of a StartTask/WatchTask stream (it ends after a terminal or PAUSED event)."""
    events: list[pb.TaskEvent] = []
    async for response in call:
        events.append(response.event)
        if first is not None and len(events) == 1:
            first(response.event)
    return events


async def until(call: Any, predicate: Callable[[pb.TaskEvent], bool]) -> pb.TaskEvent:
    """Read a stream until an event satisfies `predicate` (the stream stays open for more)."""
    async for response in call:
        event: pb.TaskEvent = response.event
        if predicate(event):
            return event
    raise AssertionError("the stream ended first")
