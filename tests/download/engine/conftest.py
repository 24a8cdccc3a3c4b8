"""Engine test fixtures: the local origin (a copy of the media fixtures), a fast-retrying fetcher, storage."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from download_server.domain.models import ResourceType, Task, TaskEvent
from download_server.engine.files.layout import Storage
from download_server.engine.http.fetch import Fetcher
from download_server.engine.http.fetch_settings import FetchSettings
from download_server.engine.http.guard import PolicyGuard
from download_server.engine.scheduling.scheduler import create_scheduler
from download_server.engine.settings import EngineSettings
from tests.download.engine.fakes import FakeTaskStore
from tests.download.engine.memory_leases import MemoryLeases
from tests.support.origin import Origin
from tests.support.s3 import StorageBackend

# Real timeouts and backoff, only shorter: a test that waits on a retry waits milliseconds.
FAST = FetchSettings(
    read_timeout=2.0,
    connect_timeout=2.0,
    backoff_base=0.005,
    backoff_max=0.05,
    max_attempts=4,
    circuit_cooldown=0.05,
    circuit_cooldown_max=0.2,
)


@pytest.fixture
async def origin(media_fixtures: Path, tmp_path: Path) -> AsyncIterator[Origin]:
    async with Origin.serving(media_fixtures, tmp_path) as served:
        yield served


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    # The origin is on loopback: private networks are allowed here; policy cases build their own fetcher.
    client = Fetcher(FAST, PolicyGuard(allow_private=True))
    yield client
    await client.close()


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "storage")


ENGINE = EngineSettings(
    segment_concurrency=4,
    allow_private_networks=True,
    fetch=FAST,
    event_interval=0.02,
    heartbeat=0.2,
    flush_interval=0.1,
    live_poll_interval=0.02,
    sweep_seconds=1.0,
    reclaim_backoff=0.05,
)


class Harness:
    """A scheduler over the fake store and the local origin, plus helpers to create tasks and await their end."""

    def __init__(
        self,
        origin: Origin,
        storage: Storage,
        settings: EngineSettings,
        store: FakeTaskStore | None = None,
        backend: StorageBackend | None = None,
    ) -> None:
        self.origin = origin
        self.storage = storage
        self.store = store or FakeTaskStore()
        self.backend = backend or StorageBackend("local")
        self.scheduler = create_scheduler(
            self.store,
            replace(settings, storage_dir=storage.root),
            leases=MemoryLeases(self.store),
            media=self.backend.media(),
        )
        self._views = 0
        self.broker = self.scheduler.broker
        self.last_events: list[TaskEvent] = []

    async def create(self, path: str, kind: ResourceType = ResourceType.HLS, *, url: str | None = None) -> Task:
        task = Task(
            id=str(uuid.uuid4()),
            user_id="user-1",
            video_id=str(uuid.uuid4()),
            liveroom_id="room-7",
            liveroom_title="a live room",
            liveroom_url="https://example.com/room-7",
            resource_url=url or self.origin.url(path),
            resource_type=kind,
        )
        await self.store.save_task(task)
        return task

    def events(self, task_id: str) -> AsyncGenerator[TaskEvent, None]:
        """The WatchTask stream of a task: current state, then events until terminal or PAUSED."""
        return self.scheduler.watch(task_id, lambda: self.store.get_task(task_id))

    async def until_stream_ends(self, task_id: str) -> list[TaskEvent]:
        return [event async for event in self.events(task_id)]

    async def run(self, task: Task, *, action: str = "start") -> Task:
        """Start (or resume/retry) the task; return it as stored once an event shows it ended or paused."""
        self.last_events = []
        with self.broker.subscribe(task_id=task.id) as sub:  # subscribed before acting: nothing slips past
            await getattr(self.scheduler, action)(task.id)
            async for event in sub:
                self.last_events.append(event)
                if event.status.ends_stream:
                    break
        return await self.store.get_task(task.id)

    async def start_until(self, task: Task, predicate: Callable[[TaskEvent], bool]) -> TaskEvent:
        """Start the task; return the first event satisfying `predicate` (no polling, no sleeps)."""
        with self.broker.subscribe(task_id=task.id) as sub:
            await self.scheduler.start(task.id)
            async for event in sub:
                if predicate(event):
                    return event
        raise AssertionError("the subscription ended first")

    def segment_files(self, task: Task, storage: Storage | None = None) -> list[Path]:
        folder = (storage or self.storage).hls_dir(task.id) / "ts"
        return sorted(folder.iterdir(), key=lambda p: int(p.stem)) if folder.is_dir() else []

    def view(self) -> Storage:
        """The finished files where the backend keeps them: the storage directory itself, or a fresh copy of
        every object of the bucket prefix (so a test checks what is in the bucket, not the work area)."""
        if not self.backend.remote:
            return self.storage
        self._views += 1
        root = self.storage.root.parent / f"bucket-view-{self._views}"
        self.backend.download_to(root)
        return Storage(root)

    def published_sha256(self, relative: str) -> str:
        """The sha256 the bucket's object at `relative` carries (its metadata), read from outside the code
        under test; "" on the local backend or when the object carries none."""
        backend = self.backend
        if backend.server is None or backend.location is None:
            return ""
        client: Any = backend.server.client()
        head = client.head_object(Bucket=backend.server.bucket, Key=f"{backend.location.prefix}/{relative}")
        return str(head.get("Metadata", {}).get("sha256", ""))


@pytest.fixture
async def harness(origin: Origin, storage: Storage) -> AsyncIterator[Harness]:
    engine = Harness(origin, storage, ENGINE)
    yield engine
    await engine.scheduler.close()


@pytest.fixture
async def backend_harness(origin: Origin, storage: Storage, storage_backend: StorageBackend) -> AsyncIterator[Harness]:
    """The harness on each media store in turn (local, then S3 in moto)."""
    engine = Harness(origin, storage, ENGINE, backend=storage_backend)
    yield engine
    await engine.scheduler.close()


@pytest.fixture(scope="session")
def manifest(media_fixtures: Path) -> dict[str, Any]:
    return dict(json.loads((media_fixtures / "manifest.json").read_text()))
