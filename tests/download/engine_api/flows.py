"""Download flows through the gRPC API: create a task for an origin path, run a stream to its end, read results."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc

from download_server.bootstrap import engine_settings
from download_server.config import DownloadSettings
from download_server.engine.files.layout import Storage
from download_server.engine.http.fetch_settings import FetchSettings
from download_server.engine.settings import EngineSettings
from mediadl.download.v1 import download_pb2 as pb
from tests.download.api import DownloadApi
from tests.support.origin import Origin

ALICE, BOB = "alice-engine", "bob-engine"
TS = "hls_ts/index.m3u8"
END_STATES = {
    pb.TASK_STATUS_COMPLETED,
    pb.TASK_STATUS_PARTIAL_COMPLETED,
    pb.TASK_STATUS_FAILED,
    pb.TASK_STATUS_CANCELLED,
    pb.TASK_STATUS_PAUSED,
}
KINDS = {"HLS": pb.RESOURCE_TYPE_HLS, "MP4": pb.RESOURCE_TYPE_MP4, "IMAGE": pb.RESOURCE_TYPE_IMAGE}
# Real timeouts and backoff, only shorter: a test that waits on a retry waits milliseconds.
FAST_FETCH = FetchSettings(read_timeout=2.0, connect_timeout=2.0, backoff_base=0.005, backoff_max=0.05, max_attempts=4)


def fast_engine(settings: DownloadSettings) -> EngineSettings:
    """The engine bootstrap builds from `settings`, with short retries, frequent events and fast live polls."""
    return replace(
        engine_settings(settings),
        fetch=FAST_FETCH,
        event_interval=0.02,
        heartbeat=0.2,
        flush_interval=0.1,
        live_poll_interval=0.02,
        reclaim_backoff=0.05,
    )


def seg(i: int, fixture: str = "hls_ts", ext: str = "ts") -> str:
    return f"{fixture}/seg{i:02d}.{ext}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def status_name(status: int) -> str:
    return str(pb.TaskStatus.Name(status))  # type: ignore[arg-type]


@dataclass
class Downloads:
    """The API and the origin of one test, with the calls a download flow makes."""

    api: DownloadApi
    origin: Origin

    @property
    def storage(self) -> Storage:
        return Storage(self.api.settings.storage_dir)

    def md(self, user: str = ALICE) -> tuple[tuple[str, str]]:
        return self.api.auth(user)

    async def create(self, path: str, kind: str = "HLS", *, user: str = ALICE, url: str | None = None) -> pb.Task:
        return await self.api.create_task(user, resource_url=url or self.origin.url(path), resource_type=KINDS[kind])

    def start_stream(self, task_id: str, user: str = ALICE) -> Any:
        return self.api.stub.StartTask(pb.StartTaskRequest(task_id=task_id), metadata=self.md(user))

    def watch_stream(self, task_id: str, user: str = ALICE) -> Any:
        return self.api.stub.WatchTask(pb.WatchTaskRequest(task_id=task_id), metadata=self.md(user))

    def retry_stream(self, task_id: str, user: str = ALICE) -> Any:
        return self.api.stub.RetryTask(pb.RetryTaskRequest(task_id=task_id), metadata=self.md(user))

    async def start(self, task_id: str, user: str = ALICE) -> list[pb.TaskEvent]:
        """StartTask, read to the end of the stream (it ends by itself after a terminal or PAUSED event)."""
        return await events_of(self.start_stream(task_id, user))

    async def watch(self, task_id: str, user: str = ALICE) -> list[pb.TaskEvent]:
        return await events_of(self.watch_stream(task_id, user))

    async def retry(self, task_id: str, user: str = ALICE) -> list[pb.TaskEvent]:
        return await events_of(self.retry_stream(task_id, user))

    async def get(self, task_id: str, user: str = ALICE) -> pb.Task:
        response = await self.api.stub.GetTask(pb.GetTaskRequest(task_id=task_id), metadata=self.md(user))
        task: pb.Task = response.task
        return task

    async def failures(self, task_id: str, user: str = ALICE) -> list[pb.Failure]:
        request = pb.ListTaskFailuresRequest(task_id=task_id, page_size=100)
        response = await self.api.stub.ListTaskFailures(request, metadata=self.md(user))
        return sorted(response.failures, key=lambda f: f.segment_index)

    async def video(self, task: pb.Task, user: str = ALICE) -> pb.Video:
        response = await self.api.stub.GetVideo(pb.GetVideoRequest(video_id=task.video_id), metadata=self.md(user))
        video: pb.Video = response.video
        return video

    async def act(self, method: str, task_id: str, user: str = ALICE) -> pb.Task:
        """PauseTask, ResumeTask or CancelTask."""
        request = getattr(pb, f"{method}Request")(task_id=task_id)
        response = await getattr(self.api.stub, method)(request, metadata=self.md(user))
        task: pb.Task = response.task
        return task

    def segment_files(self, task_id: str) -> list[Path]:
        folder = self.storage.hls_dir(task_id) / "ts"
        return sorted(folder.iterdir(), key=lambda p: int(p.stem)) if folder.is_dir() else []

    def segment_hashes(self, task_id: str) -> list[str]:
        return [sha256(path) for path in self.segment_files(task_id)]

    def served(self, prefix: str) -> dict[str, int]:
        """Whole bodies served per path under `prefix` (what "fetched twice" means)."""
        return {path: count for path, count in sorted(self.origin.completed.items()) if path.startswith(prefix)}


async def events_of(call: Any) -> list[pb.TaskEvent]:
    """Every event of a stream that ends by itself; a stream ending with an error raises it."""
    return [response.event async for response in call]


async def until(call: Any, predicate: Any) -> pb.TaskEvent:
    """Read a stream until an event satisfies `predicate`; the stream is left open (for the caller to use)."""
    async for response in call:
        if predicate(response.event):
            event: pb.TaskEvent = response.event
            return event
    raise AssertionError("the stream ended before the event the test waits for")


async def first_events(call: Any, count: int) -> AsyncIterator[pb.TaskEvent]:
    """The first `count` events of a stream (for streams that never end: WatchTasks)."""
    seen = 0
    async for response in call:
        yield response.event
        seen += 1
        if seen == count:
            return


def is_monotonic(events: list[pb.TaskEvent]) -> bool:
    done = [e.segments_done for e in events]
    received = [e.bytes_downloaded for e in events]
    return done == sorted(done) and received == sorted(received)


def load_manifest(media_fixtures: Path) -> dict[str, Any]:
    return dict(json.loads((media_fixtures / "manifest.json").read_text()))


async def code_of(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        code: grpc.StatusCode = err.code()
        return code
    return grpc.StatusCode.OK
