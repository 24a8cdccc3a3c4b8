"""An MP4 fetched in pieces (DOWNLOAD_RANGE_CONNECTIONS) on S3: each whole 8 MiB of the contiguous prefix
goes up as a part while later pieces still arrive, so a replica that takes the task over with an empty work
directory continues after the last part instead of fetching the file again."""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import replace
from typing import Any

from download_server.domain.models import ResourceType, TaskStatus
from download_server.engine.files.layout import Storage
from download_server.engine.files.objects import PART_BYTES
from tests.download.engine.conftest import ENGINE, FAST, Harness
from tests.support.origin import Fault, Origin
from tests.support.replicas import recover_to_the_end
from tests.support.s3 import S3Server, StorageBackend

BIG = "big/pieces.mp4"
PIECE = 1024 * 1024
SIZE = 3 * PART_BYTES + 12_345
DONE_PIECES = 12  # the prefix that arrives before the origin holds the next pieces: one part and a half
# Read timeouts far longer than the test: the held pieces must wait for the stop, not be fetched again.
RANGED = replace(ENGINE, range_connections=4, range_min_part_bytes=PIECE, fetch=replace(FAST, read_timeout=60.0))


async def test_a_ranged_download_taken_over_continues_after_its_uploaded_parts(
    origin: Origin, storage: Storage, s3_server: S3Server
) -> None:
    data = os.urandom(SIZE)
    origin.write(BIG, data)
    for _ in range(1 + DONE_PIECES):  # the first GET (it offers ranges), then the first pieces
        origin.add(BIG, Fault("slow", delay=0.0))
    gates = [asyncio.Event() for _ in range(RANGED.range_connections)]
    for gate in gates:  # each connection's next piece waits
        origin.add(BIG, Fault("gate", gate=gate))
    backend = StorageBackend("s3", s3_server, s3_server.location())
    first = Harness(origin, storage, RANGED, backend=backend)
    task = await first.create(BIG, ResourceType.MP4)
    key = storage.key(storage.mp4_path(task))
    try:
        await first.start_until(task, lambda e: e.bytes_downloaded >= DONE_PIECES * PIECE)
        await _until_parts(backend, 1)  # the first part of the prefix goes up while the pieces wait
    finally:
        await first.scheduler.close()  # the replica goes away mid-download
    for gate in gates:
        gate.set()
    await origin.wait_settled(BIG)
    served = origin.served[BIG]
    asked = len(origin.range_headers[BIG])
    assert backend.keys() == {} and backend.open_uploads() == [key]

    second = Harness(origin, Storage(storage.root.parent / "replica-b"), RANGED, store=first.store, backend=backend)
    await recover_to_the_end(second, task.id)

    done = await first.store.get_task(task.id)
    assert done.status is TaskStatus.COMPLETED, done.last_error
    assert origin.range_headers[BIG][asked:] == [f"bytes={PART_BYTES}-"]  # one connection, after the part
    assert origin.served[BIG] - served == SIZE - PART_BYTES
    assert backend.open_uploads() == [] and backend.keys() == {key: SIZE}
    assert first.store.videos[task.id].sha256 == hashlib.sha256(data).hexdigest()
    view = second.view()
    assert hashlib.sha256(view.mp4_path(task).read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


async def _until_parts(backend: StorageBackend, count: int, seconds: float = 10.0) -> None:
    """The upload runs beside the pieces and announces nothing: look at the bucket until it holds `count`
    parts (bounded, so a regression fails instead of hanging)."""
    for _ in range(int(seconds / 0.05)):
        if await asyncio.to_thread(_parts, backend) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} parts uploaded after {seconds} s")


def _parts(backend: StorageBackend) -> int:
    """Parts stored so far in the prefix's open uploads (read from outside the code under test)."""
    assert backend.server is not None and backend.location is not None
    client: Any = backend.server.client()
    bucket, base = backend.server.bucket, f"{backend.location.prefix}/"
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=base).get("Uploads", [])
    return sum(
        len(client.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", [])) for u in uploads
    )


async def test_paused_and_resumed_on_the_same_replica_the_pieces_and_the_upload_go_on(
    origin: Origin, storage: Storage, s3_server: S3Server
) -> None:
    data = os.urandom(SIZE)
    origin.write(BIG, data)
    for _ in range(1 + DONE_PIECES):
        origin.add(BIG, Fault("slow", delay=0.0))
    gates = [asyncio.Event() for _ in range(RANGED.range_connections)]
    for gate in gates:
        origin.add(BIG, Fault("gate", gate=gate))
    backend = StorageBackend("s3", s3_server, s3_server.location())
    harness = Harness(origin, storage, RANGED, backend=backend)
    media: Any = harness.scheduler.parts.media
    started: list[str] = []
    start_upload = media.start_upload

    async def counted(key: str, metadata: dict[str, str] | None = None) -> object:
        started.append(key)
        return await start_upload(key, metadata)

    media.start_upload = counted
    try:
        task = await harness.create(BIG, ResourceType.MP4)
        await harness.start_until(task, lambda e: e.bytes_downloaded >= DONE_PIECES * PIECE)
        await _until_parts(backend, 1)
        await harness.scheduler.pause(task.id)
        for gate in gates:
            gate.set()
        await origin.wait_settled(BIG)
        upload_ids = _upload_ids(backend)
        assert len(upload_ids) == 1
        asked = len(origin.range_headers[BIG])
        assert (await harness.run(task, action="resume")).status is TaskStatus.COMPLETED
    finally:
        await harness.scheduler.close()
    # Only the pieces not held were asked for (each a closed range), and the one upload was completed.
    resumed = origin.range_headers[BIG][asked:]
    assert resumed and all(h and h.startswith("bytes=") and not h.endswith("-") for h in resumed)
    assert backend.open_uploads() == [] and _upload_ids(backend) == []
    assert len(started) == 1  # the resumed run adopted the upload its prefix held, it began none
    assert harness.store.videos[task.id].sha256 == hashlib.sha256(data).hexdigest()
    view = harness.view()
    assert hashlib.sha256(view.mp4_path(task).read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def _upload_ids(backend: StorageBackend) -> list[str]:
    assert backend.server is not None and backend.location is not None
    client: Any = backend.server.client()
    answer = client.list_multipart_uploads(Bucket=backend.server.bucket, Prefix=f"{backend.location.prefix}/")
    return [u["UploadId"] for u in answer.get("Uploads", [])]
