"""A DASH recording on S3 failed over to a replica with an empty work directory: the segments and init
sections the bucket holds are not fetched again, a row left PENDING whose object was published before the
crash is adopted, and the manifest and the MP4 are built from the objects brought back (materialize)."""

from __future__ import annotations

from dataclasses import replace

from download_server.domain.models import OutputFormat, ResourceType, SegmentStatus, TaskStatus
from download_server.engine.files.layout import Storage
from tests.download.engine.conftest import ENGINE, Harness
from tests.download.engine.dash.media import FRAMES
from tests.support.media import decoded_video_frames, sha256
from tests.support.origin import Origin
from tests.support.replicas import recover_to_the_end
from tests.support.s3 import S3Server, StorageBackend


async def test_recovery_on_an_empty_work_dir_refetches_no_complete_segment(
    origin: Origin, storage: Storage, s3_server: S3Server
) -> None:
    backend = StorageBackend("s3", s3_server, s3_server.location())
    first = Harness(origin, storage, ENGINE, backend=backend)
    task = await first.create("number/manifest.mpd", ResourceType.DASH)
    task.output_format = OutputFormat.MP4
    await first.store.save_task(task)
    try:
        assert (await first.run(task)).status is TaskStatus.COMPLETED
    finally:
        await first.scheduler.close()
    keys = backend.keys()
    assert {f"dash/{task.id}/video_{n}.m4s" for n in range(4)} <= set(keys)

    # As a kill -9 leaves it: the task PROCESSING; rows 2 (video_1) and 7 (audio_3) never finished (PENDING,
    # no object); row 4 (video_2) PENDING although its object went up just before the kill.
    store = first.store
    await store.save_task(replace(await store.get_task(task.id), status=TaskStatus.PROCESSING))
    segments = await store.list_segments(task.id)
    for segment in segments:
        if segment.index in (2, 4, 7):
            segment.status, segment.bytes, segment.sha256 = SegmentStatus.PENDING, 0, ""
    await store.save_progress(await store.get_task(task.id), segments)
    backend.delete(f"dash/{task.id}/video_1.m4s")
    backend.delete(f"dash/{task.id}/audio_3.m4s")
    before = dict(origin.requests)

    second = Harness(origin, Storage(storage.root.parent / "replica-b"), ENGINE, store=store, backend=backend)
    await recover_to_the_end(second, task.id)

    done = await store.get_task(task.id)
    assert done.status is TaskStatus.COMPLETED, done.last_error
    fetched = sorted(p for p, n in origin.requests.items() if n != before.get(p, 0) and p.endswith((".m4s", ".mp4")))
    assert fetched == ["number/chunk-stream0-00002.m4s", "number/chunk-stream1-00004.m4s"]  # no init section
    assert all(s.status is SegmentStatus.DONE and s.sha256 for s in await store.list_segments(task.id))
    view = second.view()
    assert decoded_video_frames(view.dash_manifest_path(task.id)) == FRAMES
    video = store.videos[task.id]
    assert video.file_path == view.key(view.dash_mp4_path(task))
    assert decoded_video_frames(view.dash_mp4_path(task)) == FRAMES
    assert video.sha256 == sha256(view.dash_mp4_path(task)) == second.published_sha256(video.file_path)
    assert backend.open_uploads() == []
