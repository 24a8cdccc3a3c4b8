"""HTTP-FLV through the gRPC API: CreateTask takes RESOURCE_TYPE_FLV with output_format and max_duration_seconds;
a live room with a dropped connection ends PARTIAL_COMPLETED with its live_gap record (SQLite and PostgreSQL),
its video record is the .flv, and ReadVideo streams it."""

from __future__ import annotations

import hashlib

from mediadl.download.v1 import download_pb2 as pb
from tests.download.engine.flv_origin import Connection, FlvOrigin
from tests.download.engine_api.conftest import ServerFactory
from tests.download.engine_api.flows import ALICE, Downloads, events_of


async def test_create_task_takes_flv_with_output_format_and_max_duration(downloads: Downloads) -> None:
    task = await downloads.api.create_task(
        ALICE,
        resource_url="https://pull.example.com/live/room.flv",
        resource_type=pb.RESOURCE_TYPE_FLV,
        output_format=pb.OUTPUT_FORMAT_MP4,
        max_duration_seconds=3600,
    )
    got = await downloads.get(task.id)
    assert (got.resource_type, got.output_format, got.max_duration_seconds) == (
        pb.RESOURCE_TYPE_FLV,
        pb.OUTPUT_FORMAT_MP4,
        3600,
    )


async def test_a_live_flv_room_records_through_a_drop_and_reads_back(
    serve: ServerFactory, database_url: str, flv: FlvOrigin
) -> None:
    cut = flv.keyframes()[1]
    flv.scripts["live.flv"] = [Connection(0, cut, end="drop"), Connection(cut, len(flv.tags))]
    async with serve(database_url, DOWNLOAD_LIVE_OUTAGE_SECONDS="0.5") as downloads:
        task = await downloads.api.create_task(
            ALICE, resource_url=flv.url("live.flv"), resource_type=pb.RESOURCE_TYPE_FLV
        )
        events = await events_of(downloads.start_stream(task.id))
        assert events[-1].status == pb.TASK_STATUS_PARTIAL_COMPLETED, events[-1]
        [gap] = await downloads.failures(task.id)
        assert (gap.error_type, gap.segment_index, gap.status) == ("live_gap", -1, pb.FAILURE_STATUS_ABANDONED)

        video = await downloads.video(task)
        assert video.format == "flv" and video.file_path.startswith("flv/") and video.thumbnail_path
        request = pb.ReadVideoRequest(video_id=task.video_id)
        messages = [m async for m in downloads.api.stub.ReadVideo(request, metadata=downloads.md())]
        whole = b"".join(m.data for m in messages)
        assert messages[0].content_type == "video/x-flv" and whole[:3] == b"FLV"
        assert hashlib.sha256(whole).hexdigest() == video.sha256
