"""A live HTTP-FLV recording on S3: the work file goes up as multipart parts while it grows (8 MiB, read back
from the file), a pause keeps the one upload open and the resume continues it; a failover to a replica with
an empty work directory aborts the orphaned upload (S3 cannot read its parts back) and records the lost media
as a live gap; DeleteTask with files aborts an open upload and removes the objects."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from download_server.adapters.s3_media import S3Media, S3PartUpload
from download_server.domain.models import LIVE_GAP, ResourceType, Task, TaskStatus
from download_server.domain.ports import MediaStoreError
from download_server.engine.files.layout import Storage, temp_path
from download_server.engine.files.objects import PART_BYTES
from download_server.engine.files.removal import StorageTaskFiles
from tests.download.engine.conftest import ENGINE, Harness
from tests.download.engine.flv_origin import Connection, FlvOrigin
from tests.support.origin import Origin
from tests.support.replicas import recover_to_the_end, stop_mid_run
from tests.support.s3 import S3Server, StorageBackend

SETTINGS = replace(ENGINE, live_outage_seconds=0.5)


@pytest.fixture(scope="module")
def big_flv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 40 MiB of FLV (lossless noise at 720p, 3 s at 10 fps): several 8 MiB parts, fast to make."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg not installed: the FLV tests make their media with it")
    target = tmp_path_factory.mktemp("flv-big") / "noise.flv"
    subprocess.run(
        [
            ffmpeg, "-v", "error", "-y", "-f", "lavfi",
            "-i", "testsrc=size=1280x720:rate=10:duration=3,noise=alls=100:allf=t",
            "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-g", "10", "-pix_fmt", "yuv420p",
            "-f", "flv", str(target),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    assert target.stat().st_size > 4 * PART_BYTES
    return target


@pytest.fixture
async def flv(big_flv: Path) -> AsyncIterator[FlvOrigin]:
    async with FlvOrigin(big_flv).serving() as served:
        yield served


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys of every multipart upload the code under test begins."""
    keys: list[str] = []
    original = S3Media.start_upload

    async def counting(self: S3Media, key: str, metadata: dict[str, str] | None = None) -> S3PartUpload:
        keys.append(key)
        return await original(self, key, metadata)

    monkeypatch.setattr(S3Media, "start_upload", counting)
    return keys


def halfway(flv: FlvOrigin) -> int:
    """Bytes of the recording when a held first connection has sent the first half of the tags."""
    half = len(flv.tags) // 2
    return len(flv.header) + sum(len(t.encode()) for t in [*flv.setup, *flv.tags[:half]])


def open_parts(backend: StorageBackend, key: str) -> list[int]:
    """Part sizes of the one open upload of `key` (read from outside the code under test)."""
    assert backend.server is not None and backend.location is not None
    client: Any = backend.server.client()
    full = f"{backend.location.prefix}/{key}"
    [upload] = client.list_multipart_uploads(Bucket=backend.server.bucket, Prefix=full)["Uploads"]
    parts = client.list_parts(Bucket=backend.server.bucket, Key=full, UploadId=upload["UploadId"])
    return [part["Size"] for part in parts.get("Parts", [])]


async def live_task(harness: Harness, flv: FlvOrigin) -> Task:
    return await harness.create("", ResourceType.FLV, url=flv.url("live.flv"))


async def until_ended(harness: Harness, task: Task) -> Task:
    async for _event in harness.events(task.id):
        pass
    return await harness.store.get_task(task.id)


def stored_sha256(harness: Harness, task: Task) -> str:
    return hashlib.sha256(harness.view().flv_path(task).read_bytes()).hexdigest()


async def test_pause_keeps_the_one_upload_open_and_resume_continues_it(
    origin: Origin, storage: Storage, s3_server: S3Server, flv: FlvOrigin, started: list[str]
) -> None:
    backend = StorageBackend("s3", s3_server, s3_server.location())
    harness = Harness(origin, storage, SETTINGS, backend=backend)
    try:
        first = Connection(0, len(flv.tags), hold=asyncio.Event())
        flv.scripts["live.flv"] = [first, Connection(len(flv.tags) // 2, len(flv.tags))]
        task = await live_task(harness, flv)
        key = storage.key(storage.flv_path(task))
        held = halfway(flv)
        await harness.start_until(task, lambda e: e.bytes_downloaded == held)
        await harness.scheduler.pause(task.id)
        assert (await harness.store.get_task(task.id)).status is TaskStatus.PAUSED
        assert backend.keys() == {}  # nothing visible while the recording is not over
        assert backend.open_uploads() == [key]
        parts = open_parts(backend, key)
        assert parts and set(parts) == {PART_BYTES}  # whole parts only, all from the work file's prefix
        assert temp_path(storage.flv_path(task)).stat().st_size == held

        done = await harness.run(task, action="resume")
        assert done.status is TaskStatus.PARTIAL_COMPLETED, done.last_error  # the paused time is a live gap
    finally:
        await harness.scheduler.close()
    assert started == [key]  # one upload for both runs
    assert backend.open_uploads() == []
    video = harness.store.videos[task.id]
    assert backend.keys()[key] == video.file_size > held
    assert stored_sha256(harness, task) == video.sha256
    assert not storage.flv_path(task).exists()  # the bucket holds the recording; the work area let go


async def test_a_part_the_store_refused_is_sent_again_and_the_recording_goes_on(
    origin: Origin, storage: Storage, s3_server: S3Server, flv: FlvOrigin, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    original = S3PartUpload.send

    async def failing_once(self: S3PartUpload, path: Path, offset: int, size: int) -> None:
        sent.append(offset)
        if len(sent) == 1:
            raise MediaStoreError("uploading a part: SlowDown")
        await original(self, path, offset, size)

    monkeypatch.setattr(S3PartUpload, "send", failing_once)
    backend = StorageBackend("s3", s3_server, s3_server.location())
    harness = Harness(origin, storage, SETTINGS, backend=backend)
    try:
        flv.scripts["live.flv"] = [Connection(0, len(flv.tags))]
        task = await live_task(harness, flv)
        done = await harness.run(task)
    finally:
        await harness.scheduler.close()
    assert done.status is TaskStatus.COMPLETED, done.last_error  # nothing lost, no failure record
    assert sent[:2] == [0, 0]  # the refused part went up again, then the rest in order
    assert all(b - a == PART_BYTES for a, b in itertools.pairwise(sent[1:]))
    assert backend.open_uploads() == []
    video = harness.store.videos[task.id]
    assert video.file_size == flv.media.stat().st_size  # one connection: every tag of the origin's file
    assert stored_sha256(harness, task) == video.sha256


async def test_a_failover_to_an_empty_work_dir_aborts_the_orphan_and_records_the_loss(
    origin: Origin, storage: Storage, s3_server: S3Server, flv: FlvOrigin, started: list[str]
) -> None:
    backend = StorageBackend("s3", s3_server, s3_server.location())
    first = Harness(origin, storage, SETTINGS, backend=backend)
    first_half = Connection(0, len(flv.tags), hold=asyncio.Event())
    flv.scripts["live.flv"] = [first_half, Connection(len(flv.tags) // 2, len(flv.tags))]
    task = await live_task(first, flv)
    key = storage.key(storage.flv_path(task))
    await stop_mid_run(first, task, lambda e: e.bytes_downloaded == halfway(flv))  # the replica goes away
    assert backend.open_uploads() == [key] and backend.keys() == {}

    second = Harness(origin, Storage(storage.root.parent / "replica-b"), SETTINGS, store=first.store, backend=backend)
    await recover_to_the_end(second, task.id)

    done = await first.store.get_task(task.id)
    assert done.status is TaskStatus.PARTIAL_COMPLETED, done.last_error
    gaps = [f.error_message for f in await first.store.task_failures(task.id) if f.error_type == LIVE_GAP]
    assert any("earlier run" in message for message in gaps)
    assert started == [key, key]  # the orphan could not be continued: a new upload
    assert backend.open_uploads() == []  # and the orphan was aborted, not left billed
    video = first.store.videos[task.id]
    assert backend.keys()[key] == video.file_size < flv.media.stat().st_size
    assert stored_sha256(second, task) == video.sha256


async def test_delete_with_files_aborts_the_open_flv_upload(
    origin: Origin, storage: Storage, s3_server: S3Server, flv: FlvOrigin
) -> None:
    backend = StorageBackend("s3", s3_server, s3_server.location())
    harness = Harness(origin, storage, SETTINGS, backend=backend)
    try:
        flv.scripts["live.flv"] = [Connection(0, len(flv.tags), hold=asyncio.Event())]
        task = await live_task(harness, flv)
        await harness.start_until(task, lambda e: e.bytes_downloaded == halfway(flv))
        assert backend.open_uploads() == [storage.key(storage.flv_path(task))]
        await harness.scheduler.delete(task.id, task.user_id)
        # What DeleteTask with delete_files does after the rows went (services/tasks.py).
        await StorageTaskFiles(storage, harness.scheduler.parts.media).remove(task, None)
    finally:
        await harness.scheduler.close()
    assert backend.open_uploads() == [] and backend.keys() == {}
    assert not temp_path(storage.flv_path(task)).exists()
