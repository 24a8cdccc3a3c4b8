"""A replica that dies or is stopped: its downloads finish on the others, with identical bytes and without
fetching again a segment that was complete. SIGKILL: after its leases lapse; SIGTERM: handed back at once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from download_server.engine.files.objects import PART_BYTES
from mediadl.download.v1 import download_pb2 as pb
from tests.scale.cluster import Cluster, cluster, events_until_end, hls_copies, seg, until
from tests.support.origin import Origin
from tests.support.s3 import S3Server, StorageBackend

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


@pytest.fixture
def manifest(media_fixtures: Path) -> dict[str, Any]:
    return dict(json.loads((media_fixtures / "manifest.json").read_text()))


async def two_tasks_held_on_b(c: Cluster, origin: Origin) -> tuple[list[str], list[pb.Task]]:
    """Two downloads running on replica B, segments 0-2 complete, each waiting on its held segment 3."""
    streams = hls_copies(origin, 2)
    for stream in streams:
        origin.gate(seg(stream, 3))
    tasks = [await c.create("a", origin.url(stream)) for stream in streams]
    for stream, task in zip(streams, tasks, strict=True):
        await until(c.start("b", task.id), lambda e: e.status == pb.TASK_STATUS_PROCESSING)
        await asyncio.wait_for(origin.wait_requests(seg(stream, 3), 1), timeout=30)
    assert {owner for owner, _ in (await c.leases()).values()} == {"replica-b"}
    return streams, tasks


async def finish_elsewhere(c: Cluster, tasks: list[pb.Task], deadline: float) -> None:
    """Watch the tasks from replica A until they complete (the events come from whichever replica runs them)."""
    ends = await asyncio.wait_for(
        asyncio.gather(*(events_until_end(c.watch("a", task.id)) for task in tasks)), timeout=deadline
    )
    assert [events[-1].status for events in ends] == [pb.TASK_STATUS_COMPLETED] * len(tasks)


async def test_sigkill_a_replica_mid_download_and_another_finishes_after_its_leases_lapse(
    make_database_url: Callable[[str], str], media_fixtures: Path, tmp_path: Path, manifest: dict[str, Any]
) -> None:
    database = make_database_url("postgresql")
    async with Origin.serving(media_fixtures, tmp_path) as origin, cluster(database, tmp_path) as c:
        streams, tasks = await two_tasks_held_on_b(c, origin)
        assert await c.kill("b", signal.SIGKILL) == -signal.SIGKILL
        # Nothing announces a death: the tasks move once B's 2 s leases lapse and a claim pass sees it.
        await finish_elsewhere(c, tasks, deadline=60)

        for stream, task in zip(streams, tasks, strict=True):
            assert [origin.completed[seg(stream, i)] for i in range(6)] == [1] * 6  # 0-2 by B, 3-5 after
            assert c.segment_hashes(task.id) == manifest["hls_ts"]["segment_sha256"]
            done = await c.get("c", task.id)
            assert (done.segments_done, done.segments_failed, done.retry_count) == (6, 0, 0)
        owners = {owner for owner, _ in (await c.leases()).values()}
        assert owners <= {"replica-a", "replica-c"}
        taken = [line for name in ("a", "c") for line in c[name].log().splitlines() if "claimed task" in line]
        assert len(taken) == 2 and all("from replica-b (its lease lapsed)" in line for line in taken), taken
    assert not list((tmp_path / "storage").rglob("*.part"))


async def test_sigterm_drains_a_replica_and_its_downloads_resume_elsewhere_at_once(
    make_database_url: Callable[[str], str], media_fixtures: Path, tmp_path: Path, manifest: dict[str, Any]
) -> None:
    database = make_database_url("postgresql")
    # Leases of 60 s: were the runs not handed back, nobody could take them over before the deadline below.
    async with (
        Origin.serving(media_fixtures, tmp_path) as origin,
        cluster(database, tmp_path, DOWNLOAD_LEASE_SECONDS="60") as c,
    ):
        streams, tasks = await two_tasks_held_on_b(c, origin)
        assert await c.kill("b", signal.SIGTERM) == 0
        await finish_elsewhere(c, tasks, deadline=30)

        for stream, task in zip(streams, tasks, strict=True):
            assert [origin.completed[seg(stream, i)] for i in range(6)] == [1] * 6
            assert c.segment_hashes(task.id) == manifest["hls_ts"]["segment_sha256"]
        assert "handed back 2 download(s)" in c["b"].log()
        taken = [line for name in ("a", "c") for line in c[name].log().splitlines() if "claimed task" in line]
        assert len(taken) == 2 and all("from replica-b)" in line for line in taken), taken
        assert {owner for owner, _ in (await c.leases()).values()} <= {"replica-a", "replica-c"}


async def test_on_s3_replicas_share_only_the_bucket_and_a_sigkilled_ones_tasks_finish_elsewhere(
    make_database_url: Callable[[str], str],
    media_fixtures: Path,
    tmp_path: Path,
    manifest: dict[str, Any],
    s3_server: S3Server,
) -> None:
    """The SIGKILL case with STORAGE_URL: three replicas, each with its own empty work directory."""
    backend = StorageBackend("s3", s3_server, s3_server.location())
    database = make_database_url("postgresql")
    async with (
        Origin.serving(media_fixtures, tmp_path) as origin,
        cluster(database, tmp_path, ("a", "b", "c"), storage_dirs="own", **backend.env()) as c,
    ):
        streams, tasks = await two_tasks_held_on_b(c, origin)
        assert await c.kill("b", signal.SIGKILL) == -signal.SIGKILL
        await finish_elsewhere(c, tasks, deadline=60)

        view = tmp_path / "bucket"
        backend.download_to(view)
        for stream, task in zip(streams, tasks, strict=True):
            # 0-2 came from B's uploads: A or C, whose work directories never held them, fetched only 3-5.
            assert [origin.completed[seg(stream, i)] for i in range(6)] == [1] * 6
            assert c.segment_hashes(task.id, view) == manifest["hls_ts"]["segment_sha256"]
            assert b"#EXT-X-ENDLIST" in (view / "hls" / task.id / "index.m3u8").read_bytes()
    assert not (tmp_path / "storage").exists()  # no shared folder was ever used


async def test_on_s3_a_replica_sigkilled_mid_upload_is_continued_from_its_parts_by_another(
    make_database_url: Callable[[str], str], media_fixtures: Path, tmp_path: Path, s3_server: S3Server
) -> None:
    backend = StorageBackend("s3", s3_server, s3_server.location())
    database = make_database_url("postgresql")
    data = os.urandom(3 * PART_BYTES)
    async with (
        Origin.serving(media_fixtures, tmp_path) as origin,
        cluster(database, tmp_path, ("a", "b", "c"), storage_dirs="own", **backend.env()) as c,
    ):
        origin.write("big/clip.mp4", data)
        release = origin.hold("big/clip.mp4")  # half the file (one 8 MiB part is up by then), then it waits
        task = await c.create("a", origin.url("big/clip.mp4"), kind="MP4")
        await until(c.start("b", task.id), lambda e: e.bytes_downloaded >= len(data) // 2)
        # A part goes up once 9 MiB are in and is awaited before more is written: at 12 MiB it is stored.
        assert _parts_of(backend) == 1
        assert await c.kill("b", signal.SIGKILL) == -signal.SIGKILL
        release.set()
        await origin.wait_settled("big/clip.mp4")
        served = origin.served["big/clip.mp4"]
        mp4_keys = [key for key in backend.keys() if key.startswith("mp4/")]
        assert mp4_keys == []  # nothing half-made is visible, only the open upload
        assert len(backend.open_uploads()) == 1

        await finish_elsewhere(c, [task], deadline=60)
        # B's .part died with its work area; its upload did not: the next replica continued it after its
        # one part, so the origin served the rest of the file and nothing twice.
        assert backend.open_uploads() == []
        assert origin.range_headers["big/clip.mp4"] == [None, f"bytes={PART_BYTES}-"]
        assert origin.served["big/clip.mp4"] - served == len(data) - PART_BYTES
        video = (await c["a"].stub.ListTaskVideos(pb.ListTaskVideosRequest(task_id=task.id), metadata=c.md())).videos[0]
        view = tmp_path / "bucket"
        backend.download_to(view)
        assert hashlib.sha256((view / video.file_path).read_bytes()).digest() == hashlib.sha256(data).digest()


def _parts_of(backend: StorageBackend) -> int:
    assert backend.server is not None and backend.location is not None
    client: Any = backend.server.client()
    base = f"{backend.location.prefix}/"
    uploads = client.list_multipart_uploads(Bucket=backend.server.bucket, Prefix=base).get("Uploads", [])
    return sum(
        len(client.list_parts(Bucket=backend.server.bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", []))
        for u in uploads
    )
