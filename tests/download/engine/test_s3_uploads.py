"""An MP4 that goes up to S3 as parts while it downloads: a stop mid-upload shows nothing half-made, and the
next run (the same replica, or another one with an empty work directory) continues the upload, asks the
origin only for what no part holds, and leaves no multipart upload behind."""

from __future__ import annotations

import hashlib
import os
import shutil
from typing import Any

import pytest

from download_server.domain.models import ResourceType, SegmentStatus, Task, TaskStatus
from download_server.engine.files.layout import Storage, temp_path
from download_server.engine.files.objects import PART_BYTES
from download_server.engine.files.removal import StorageTaskFiles
from tests.download.engine.conftest import ENGINE, Harness
from tests.support.media import sha256
from tests.support.origin import Origin
from tests.support.replicas import recover_to_the_end, stop_mid_run
from tests.support.s3 import S3Server, StorageBackend

BIG = "big/recording.mp4"
SIZE = 3 * PART_BYTES + 12_345  # three whole parts and a short last one


@pytest.mark.parametrize("resumed_by", ["same replica", "another replica"])
async def test_a_run_stopped_mid_upload_shows_nothing_and_the_next_run_continues_the_upload(
    origin: Origin, storage: Storage, s3_server: S3Server, resumed_by: str
) -> None:
    data, backend, first, task = await _stopped_half_way(origin, storage, s3_server)
    served = origin.served[BIG]

    key = storage.key(storage.mp4_path(task))
    assert backend.keys() == {}  # nothing visible under the final key, nor anywhere else
    assert backend.open_uploads() == [key]  # the parts sent so far wait in an open upload
    held = temp_path(storage.mp4_path(task)).stat().st_size
    assert held == SIZE // 2
    uploaded = PART_BYTES  # parts go up once a part and a flush are on disk: one of the 1.5 parts held

    if resumed_by == "another replica":
        storage = Storage(storage.root.parent / "replica-b")  # its own, empty work directory
    second = Harness(origin, storage, ENGINE, store=first.store, backend=backend)
    await recover_to_the_end(second, task.id)

    done = await first.store.get_task(task.id)
    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert backend.open_uploads() == []  # the one upload was continued and completed
    assert backend.keys() == {key: SIZE}
    stored = second.view()
    assert hashlib.sha256(stored.mp4_path(task).read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert first.store.videos[task.id].sha256 == hashlib.sha256(data).hexdigest()
    # The same replica continued its .part file and its upload; another one had neither, so it continued the
    # upload after its last part: the origin served only the bytes no part held.
    resumed_at = held if resumed_by == "same replica" else uploaded
    assert origin.range_headers[BIG] == [None, f"bytes={resumed_at}-"]
    assert origin.served[BIG] - served == SIZE - resumed_at


async def test_an_upload_that_cannot_be_continued_is_aborted_and_the_file_fetched_from_the_start(
    origin: Origin, storage: Storage, s3_server: S3Server
) -> None:
    data = os.urandom(SIZE)
    origin.write(BIG, data)
    location = s3_server.location()
    backend = StorageBackend("s3", s3_server, location)
    harness = Harness(origin, storage, ENGINE, backend=backend)
    task = await harness.create(BIG, ResourceType.MP4)
    # An open upload of the key whose part is not a whole part size (not one of ours to continue).
    client: Any = s3_server.client()
    full = f"{location.prefix}/{storage.key(storage.mp4_path(task))}"
    made = client.create_multipart_upload(Bucket=s3_server.bucket, Key=full)
    client.upload_part(Bucket=s3_server.bucket, Key=full, UploadId=made["UploadId"], PartNumber=1, Body=data[:1000])
    try:
        assert (await harness.run(task)).status is TaskStatus.COMPLETED
    finally:
        await harness.scheduler.close()
    assert backend.open_uploads() == []
    assert harness.store.videos[task.id].sha256 == hashlib.sha256(data).hexdigest()
    assert origin.range_headers[BIG][0] is None  # from the start


async def test_delete_with_files_removes_the_objects_and_aborts_the_upload(
    origin: Origin, storage: Storage, s3_server: S3Server
) -> None:
    origin.write(BIG, os.urandom(SIZE))
    release = origin.hold(BIG)
    backend = StorageBackend("s3", s3_server, s3_server.location())
    harness = Harness(origin, storage, ENGINE, backend=backend)
    other = await harness.create("hls_ts/index.m3u8")  # another task's objects must stay
    assert (await harness.run(other)).status is TaskStatus.COMPLETED
    try:
        task = await harness.create(BIG, ResourceType.MP4)
        await harness.start_until(task, lambda e: e.bytes_downloaded >= SIZE // 2)
        assert backend.open_uploads() == [storage.key(storage.mp4_path(task))]
        await harness.scheduler.delete(task.id, task.user_id)
        release.set()
        # What DeleteTask with delete_files does after the rows went (services/tasks.py).
        await StorageTaskFiles(storage, harness.scheduler.parts.media).remove(task, None)
    finally:
        await harness.scheduler.close()
    assert backend.open_uploads() == []
    keys = backend.keys()
    assert keys and all(key.startswith(f"hls/{other.id}/") or key == f"thumbnails/{other.id}.jpg" for key in keys)


async def test_a_segment_whole_on_disk_but_never_uploaded_is_uploaded_on_recovery_not_fetched(
    origin: Origin, storage: Storage, s3_server: S3Server, manifest: dict[str, Any]
) -> None:
    backend = StorageBackend("s3", s3_server, s3_server.location())
    first = Harness(origin, storage, ENGINE, backend=backend)
    task = await first.create("hls_ts/index.m3u8")
    assert (await first.run(task)).status is TaskStatus.COMPLETED
    await first.scheduler.close()
    finished = first.view()

    # A process killed between a segment's rename and its upload: the row PENDING, the file whole in the
    # work area, no object. (Segment 5: the same, but its file never reached the disk either.)
    store = first.store
    stored = await store.get_task(task.id)
    stored.status = TaskStatus.PROCESSING
    await store.save_task(stored)
    segments = await store.list_segments(task.id)
    for s in segments[4:]:
        s.status, s.bytes, s.sha256 = SegmentStatus.PENDING, 0, ""
        backend.delete(f"hls/{task.id}/ts/{s.index}.ts")
    await store.save_progress(stored, segments)
    work_file = storage.segment_path(task.id, 4, "ts")
    work_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(finished.segment_path(task.id, 4, "ts"), work_file)
    origin.requests.clear()

    second = Harness(origin, storage, ENGINE, store=store, backend=backend)
    await recover_to_the_end(second, task.id)
    assert (await store.get_task(task.id)).status is TaskStatus.COMPLETED
    assert [origin.requests[f"hls_ts/seg0{i}.ts"] for i in range(6)] == [0, 0, 0, 0, 0, 1]
    view = second.view()
    expected = manifest["hls_ts"]["segment_sha256"]
    assert [sha256(f) for f in second.segment_files(task, view)] == expected
    assert [s.sha256 for s in await store.list_segments(task.id)] == expected


@pytest.mark.parametrize("ending", ["cancelled while running", "cancelled when paused", "deleted, files kept"])
async def test_a_task_that_will_not_resume_leaves_no_upload_open(
    origin: Origin, storage: Storage, s3_server: S3Server, ending: str
) -> None:
    origin.write(BIG, os.urandom(SIZE))
    release = origin.hold(BIG)
    backend = StorageBackend("s3", s3_server, s3_server.location())
    harness = Harness(origin, storage, ENGINE, backend=backend)
    try:
        task = await harness.create(BIG, ResourceType.MP4)
        await harness.start_until(task, lambda e: e.bytes_downloaded >= SIZE // 2)
        assert backend.open_uploads() == [storage.key(storage.mp4_path(task))]
        if ending == "cancelled when paused":
            await harness.scheduler.pause(task.id)
            assert backend.open_uploads() != []  # a paused task keeps its upload for its next run
        if ending == "deleted, files kept":
            await harness.scheduler.delete(task.id, task.user_id)
        else:
            await harness.scheduler.cancel(task.id)
            assert (await harness.store.get_task(task.id)).status is TaskStatus.CANCELLED
        release.set()
    finally:
        await harness.scheduler.close()
    assert backend.open_uploads() == []


async def test_a_continued_file_whose_upload_was_aborted_is_fetched_again_not_from_its_hole(
    origin: Origin, storage: Storage, s3_server: S3Server
) -> None:
    data, backend, first, task = await _stopped_half_way(origin, storage, s3_server)

    # Another replica continues the upload (its .part a hole up to the one uploaded part), and is cancelled
    # while it waits for the origin: the cancel aborts the upload, so that hole's bytes are nowhere now.
    other = Storage(storage.root.parent / "replica-b")
    second = Harness(origin, other, ENGINE, store=first.store, backend=backend)
    gate = origin.gate(BIG)
    try:
        assert await second.scheduler.recover() == [task.id]
        await origin.wait_requests(BIG, 2)
        assert origin.range_headers[BIG][-1] == f"bytes={PART_BYTES}-"
        await second.scheduler.cancel(task.id)
        gate.set()
        assert backend.open_uploads() == []
        assert temp_path(other.mp4_path(task)).stat().st_size == PART_BYTES  # the hollow .part is still there
        # Started again on that replica: the hole is not taken for the file's head.
        assert (await second.run(task)).status is TaskStatus.COMPLETED
    finally:
        await second.scheduler.close()
    assert first.store.videos[task.id].sha256 == hashlib.sha256(data).hexdigest()
    assert backend.open_uploads() == []
    view = second.view()
    assert hashlib.sha256(view.mp4_path(task).read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert origin.range_headers[BIG][2] is None  # from the start


async def _stopped_half_way(
    origin: Origin, storage: Storage, s3_server: S3Server
) -> tuple[bytes, StorageBackend, Harness, Task]:
    """A random BIG MP4 on S3 whose run is stopped once half of it arrived (the origin serves half the file,
    one part and more, then waits until the run is stopped): its data, the backend, the harness, the task."""
    data = os.urandom(SIZE)
    origin.write(BIG, data)
    release = origin.hold(BIG)
    backend = StorageBackend("s3", s3_server, s3_server.location())
    first = Harness(origin, storage, ENGINE, backend=backend)
    task = await first.create(BIG, ResourceType.MP4)
    await stop_mid_run(first, task, lambda e: e.bytes_downloaded >= SIZE // 2)
    release.set()
    await origin.wait_settled(BIG)
    return data, backend, first, task
