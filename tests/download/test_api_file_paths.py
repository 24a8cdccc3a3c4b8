"""Files belong to tasks: CreateVideo takes only the caller's own task's files, DeleteTask removes only those,
and no response shows an absolute server path (issue 15, finding 2)."""

from __future__ import annotations

import os

import grpc

from download_server.engine.files.layout import Storage
from mediadl.download.v1 import download_pb2 as pb
from tests.download.api import DownloadApi
from tests.download.helpers import make_video
from tests.support.status import rpc_failure

ALICE, BOB = "alice-0015", "bob-0015"


async def test_create_video_takes_only_the_caller_s_own_task_files(api: DownloadApi) -> None:
    storage = Storage(api.settings.storage_dir)
    mine = await api.create_task(ALICE)
    bobs = await api.create_task(BOB)
    victim = storage.segment_path(bobs.id, 0, "ts")
    victim.parent.mkdir(parents=True)
    victim.write_bytes(b"bob's segment")
    own = storage.hls_dir(mine.id)
    own.mkdir(parents=True)
    (own / "out").symlink_to(storage.hls_dir(bobs.id))  # a symlink inside my folder, leading into Bob's
    (api.settings.storage_dir / "hls" / "escape").symlink_to(own)  # a symlink from outside, into mine
    attempts = [
        str(victim),  # absolute, another user's task
        f"hls/{bobs.id}/ts/0.ts",  # relative, another user's task
        f"hls/{mine.id}/../{bobs.id}/ts/0.ts",  # .. out of my folder
        f"hls/{mine.id}/out/ts/0.ts",  # a symlink out of my folder
        "/etc/passwd",
        "../outside.mp4",
        f"hls/{mine.id}",  # my folder itself is not a file of it
        "mp4/someone-else_1_20260101_abcdefgh.mp4",
        f"{api.settings.storage_dir}",
    ]
    md = api.auth(ALICE)
    wrong = []
    for path in attempts:
        request = pb.CreateVideoRequest(task_id=mine.id, file_path=path, file_size=1, format="hls")
        refused = await rpc_failure(api.stub.CreateVideo(request, metadata=md))
        if refused.code != grpc.StatusCode.INVALID_ARGUMENT or "file_path" not in refused.violations:
            wrong.append((path, refused.code))
    assert wrong == []

    for accepted in (f"hls/{mine.id}/index.m3u8", str(own / "index.m3u8"), "hls/escape/index.m3u8"):
        request = pb.CreateVideoRequest(task_id=mine.id, file_path=accepted, file_size=1, format="hls")
        video = (await api.stub.CreateVideo(request, metadata=md)).video
        assert video.file_path == f"hls/{mine.id}/index.m3u8"  # resolved, relative to STORAGE_DIR

    await api.stub.DeleteTask(pb.DeleteTaskRequest(task_id=mine.id, delete_files=True), metadata=md)
    assert victim.read_bytes() == b"bob's segment"


async def test_delete_never_removes_another_task_s_file_named_by_an_old_record(api: DownloadApi) -> None:
    """A record written before the rule (absolute, or naming another user's file) is not obeyed."""
    storage = Storage(api.settings.storage_dir)
    mine = await api.create_task(ALICE)
    bobs = await api.store.get_task((await api.create_task(BOB)).id)
    victim = storage.mp4_path(bobs)
    victim.parent.mkdir(parents=True)
    victim.write_bytes(b"bob's video")
    await api.store.save_video(make_video(await api.store.get_task(mine.id), file_path=str(victim)))

    shown = (await api.stub.GetVideo(pb.GetVideoRequest(video_id=mine.video_id), metadata=api.auth(ALICE))).video
    assert not os.path.isabs(shown.file_path) and str(api.settings.storage_dir) not in shown.file_path
    await api.stub.DeleteTask(pb.DeleteTaskRequest(task_id=mine.id, delete_files=True), metadata=api.auth(ALICE))
    assert victim.read_bytes() == b"bob's video"
