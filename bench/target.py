"""The whole path under measurement: `python -m download_server` in its own process, driven over gRPC.

Each server gets a fresh SQLite database and storage folder under the work directory and the bench
mints an access token with the same random secret, as the auth server would. A download is CreateTask,
then StartTask streamed until the terminal event: exactly what a client does.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from auth_server.adapters.tokens import JwtIssuer
from mediadl.download.v1 import download_pb2 as pb
from mediadl.download.v1 import download_pb2_grpc
from mediadl_common.config import JwtSettings

ROOT = Path(__file__).resolve().parent.parent
_TERMINAL = {
    pb.TASK_STATUS_COMPLETED,
    pb.TASK_STATUS_PARTIAL_COMPLETED,
    pb.TASK_STATUS_FAILED,
    pb.TASK_STATUS_CANCELLED,
}


@dataclass(frozen=True)
class Outcome:
    seconds: float  # CreateTask sent -> terminal event received
    status: str
    task_id: str
    events: int
    bytes_downloaded: int
    segments_done: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DownloadServer:
    """A download server subprocess and a client acting as one user (context manager)."""

    def __init__(self, workdir: Path, *, concurrency: int = 8, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.storage = workdir / "storage"
        self.log_path = workdir / "server.log"
        self._secret = secrets.token_hex(32)
        self._port = free_port()
        self._concurrency = concurrency
        self._extra_env = dict(
            env or {}
        )  # more settings (DOWNLOAD_RANGE_CONNECTIONS, STORAGE_URL and a bucket's credentials, ...)
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None
        self._stub: Any = None
        token, _ = JwtIssuer(JwtSettings(secret_key=self._secret)).issue(
            sub=str(uuid.uuid4()), type="access", ttl_seconds=3600
        )
        self._metadata = (("authorization", f"Bearer {token}"),)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def __enter__(self) -> DownloadServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        prefixes = ("DOWNLOAD_", "JWT_", "STORAGE_", "S3_", "AWS_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        env.update(
            PYTHONPATH=str(ROOT),
            JWT_SECRET_KEY=self._secret,
            DOWNLOAD_DATABASE_URL=f"sqlite:///{self.workdir / 'download.db'}",
            DOWNLOAD_GRPC_ADDR=f"127.0.0.1:{self._port}",
            STORAGE_DIR=str(self.storage),
            DOWNLOAD_ALLOW_PRIVATE_NETWORKS="true",  # the origin is on loopback
            DOWNLOAD_SEGMENT_CONCURRENCY=str(self._concurrency),
            LOG_LEVEL="WARNING",
        )
        env.update(self._extra_env)
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "download_server"],
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self._port}")
        try:
            grpc.channel_ready_future(self._channel).result(timeout=60)
        except grpc.FutureTimeoutError:
            self.__exit__()
            raise RuntimeError(f"the download server did not start; see {self.log_path}") from None
        self._stub = download_pb2_grpc.DownloadServiceStub(self._channel)  # type: ignore[no-untyped-call]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    @property
    def stub(self) -> Any:
        """The DownloadService stub, for benchmarks that drive more than one download."""
        return self._stub

    @property
    def metadata(self) -> tuple[tuple[str, str]]:
        return self._metadata

    def warm_up(self) -> None:
        """One authenticated unary call, so what is measured next finds the whole stack loaded."""
        self._stub.ListTasks(pb.ListTasksRequest(), metadata=self._metadata, wait_for_ready=True)

    def download(self, url: str, resource_type: str) -> Outcome:
        """CreateTask + StartTask, streamed until the terminal event; raises unless it ends COMPLETED."""
        started = time.perf_counter()
        created = self._stub.CreateTask(
            pb.CreateTaskRequest(
                video_id=str(uuid.uuid4()),
                liveroom_id="bench",
                liveroom_title="benchmark",
                liveroom_url="https://example.com/bench",
                resource_url=url,
                resource_type=f"RESOURCE_TYPE_{resource_type.upper()}",
            ),
            metadata=self._metadata,
            wait_for_ready=True,
        )
        task_id = created.task.id
        events, last, elapsed = 0, None, 0.0
        stream = self._stub.StartTask(
            pb.StartTaskRequest(task_id=task_id), metadata=self._metadata, wait_for_ready=True
        )
        # Read to the stream's own end (the server closes it after the terminal event); never cancel it.
        for message in stream:
            events += 1
            last = message.event
            if last.status in _TERMINAL:
                elapsed = time.perf_counter() - started
        if last is None or last.status != pb.TASK_STATUS_COMPLETED:
            status = pb.TaskStatus.Name(last.status) if last is not None else "no event"
            raise RuntimeError(f"the download ended {status}: {last.message if last else ''} (see {self.log_path})")
        return Outcome(elapsed, "COMPLETED", task_id, events, last.bytes_downloaded, last.segments_done)

    def video(self, task_id: str) -> Any:
        """The video record the finished download created."""
        page = self._stub.ListTaskVideos(
            pb.ListTaskVideosRequest(task_id=task_id), metadata=self._metadata, wait_for_ready=True
        )
        if not page.videos:
            raise RuntimeError(f"task {task_id} has no video record")
        return page.videos[0]

    def delete(self, task_id: str) -> None:
        """Delete the task and its files (keeps the disk from filling over repeated runs)."""
        self._stub.DeleteTask(
            pb.DeleteTaskRequest(task_id=task_id, delete_files=True), metadata=self._metadata, wait_for_ready=True
        )
