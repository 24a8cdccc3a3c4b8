"""What a finished download adds to its video record: an HLS or FLV recording's MP4 and every record's thumbnail."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from download_server.domain.models import OutputFormat, ResourceType, Segment, SegmentStatus, Task, Video, VideoFormat
from download_server.domain.ports import MediaStore, MediaStoreError
from download_server.engine.files.layout import DASH_KINDS, Storage, dash_kind
from download_server.engine.files.objects import publish_file
from download_server.engine.files.sinks import sha256_of
from download_server.engine.output.live_mux import LiveMux, building_path
from download_server.engine.output.mux_tracks import build_tracks_mp4
from download_server.engine.output.remux import Run, build_mp4, runs_of
from download_server.engine.output.thumbnail import make_thumbnail

log = logging.getLogger(__name__)


async def finish_output(
    storage: Storage, task: Task, segments: list[Segment], video: Video, building: LiveMux | None = None
) -> Video:
    """Blocking work in a thread (remuxing reads and writes the whole recording): never on the event loop.
    `building`: the MP4 the run built while it downloaded; used when it holds exactly the finished segments."""
    built = building is not None and await _finish_building(storage, task, segments, video, building)
    return await asyncio.to_thread(_finish, storage, task, segments, video, built)


async def _finish_building(storage: Storage, task: Task, segments: list[Segment], video: Video, mux: LiveMux) -> bool:
    done = [s.index for s in sorted(segments, key=lambda s: s.index) if s.status is SegmentStatus.DONE]
    if task.resource_type is not ResourceType.HLS or task.output_format is not OutputFormat.MP4 or not done:
        await mux.abandon()
        return False
    started = time.perf_counter()
    target = storage.hls_mp4_path(task)
    if not await mux.finish(done, target):
        reason = mux.aborted or (str(mux.error) if mux.error else "nothing was built")
        log.info("the incremental MP4 is not used (%s): whole remux", reason, extra={"task_id": task.id})
        return False
    log.info("MP4 finished %.2f s after the download", time.perf_counter() - started, extra={"task_id": task.id})
    await asyncio.to_thread(_point_at, storage, target, video)  # hashes the whole MP4: not on the event loop
    return True


async def publish_output(storage: Storage, media: MediaStore, task: Task, video: Video) -> None:
    """Publish what finish_output made: the thumbnail, and an HLS recording's MP4 (a single MP4 or image was
    published by its job when it became whole). Nothing to do on the local backend."""
    made = [video.thumbnail_path] if video.thumbnail_path else []
    if task.resource_type is not ResourceType.MP4 and video.format is VideoFormat.MP4:  # a stream's MP4
        made.append(video.file_path)
    for relative in made:
        # The MP4's hash was taken when the record was pointed at it: the object carries it, nothing is re-read.
        sha256 = video.sha256 if relative == video.file_path else ""
        await publish_file(storage, media, storage.root / relative, sha256)
    if media.remote and not video.thumbnail_path:
        # No picture this time: an earlier run's thumbnail must not outlive it (on disk it was unlinked).
        try:
            await media.remove([storage.key(storage.thumbnail_path(task.id))])
        except MediaStoreError as exc:
            log.warning("a stale thumbnail could not be removed: %s", exc, extra={"task_id": task.id})


def _finish(storage: Storage, task: Task, segments: list[Segment], video: Video, built: bool) -> Video:
    done = [s for s in sorted(segments, key=lambda s: s.index) if s.status is SegmentStatus.DONE]
    if task.resource_type is ResourceType.HLS and task.output_format is OutputFormat.MP4 and done and not built:
        _remux(storage, task, done, video)
    elif task.resource_type is ResourceType.DASH and task.output_format is OutputFormat.MP4 and done:
        _remux_dash(storage, task, segments, video)
    elif task.resource_type is ResourceType.FLV and task.output_format is OutputFormat.MP4:
        _remux_flv(storage, task, video)
    target = storage.thumbnail_path(task.id)
    source = _picture_source(storage, task, segments, video)
    if source is not None and make_thumbnail(source, target, duration=_duration(task, video)):
        video.thumbnail_path = target.relative_to(storage.root).as_posix()
    else:
        target.unlink(missing_ok=True)
        video.thumbnail_path = ""
    return video


def _remux(storage: Storage, task: Task, done: list[Segment], video: Video) -> None:
    """Build the MP4 (again, after a retry filled a gap) and point the record at it; on failure the record
    stays the HLS playlist and the reason is logged and kept in last_error."""
    entries = []
    previous: Segment | None = None
    for segment in done:
        breaks = previous is not None and (segment.discontinuity or segment.index != previous.index + 1)
        entries.append((storage.final_segment_path(task.id, segment), storage.init_of(task.id, done, segment), breaks))
        previous = segment
    target = storage.hls_mp4_path(task)
    building_path(target).unlink(missing_ok=True)  # an incremental build a crash or a pause left behind
    _build(storage, task, video, target, lambda: build_mp4(list(runs_of(entries)), target), "the HLS playlist")


def _build(storage: Storage, task: Task, video: Video, target: Path, build: Callable[[], object], kept: str) -> None:
    """Blocking. `build` makes the MP4 at `target` and the record points at it; on failure the record stays
    what the download made (`kept` names it) and the reason is logged and kept in last_error."""
    started = time.perf_counter()
    try:
        build()
    except Exception as exc:  # FFmpeg refuses what it cannot copy: the downloaded files stay the recording
        log.warning("MP4 remux failed (%s stays the recording): %s", kept, exc, extra={"task_id": task.id})
        task.last_error = f"the MP4 could not be built ({exc}); {kept} is the recording"
        return
    log.info("MP4 built in %.2f s", time.perf_counter() - started, extra={"task_id": task.id})
    _point_at(storage, target, video)


def _point_at(storage: Storage, target: Path, video: Video) -> None:
    """Blocking (the MP4 is read whole for its hash). The record's file is the MP4 now: its path, size and
    sha256 are the MP4's (a record's hash is that of the file it names), not the playlist's, MPD's or .flv's."""
    video.file_path = target.relative_to(storage.root).as_posix()
    video.file_size = target.stat().st_size
    video.sha256 = sha256_of(target)
    video.format = VideoFormat.MP4


def _remux_flv(storage: Storage, task: Task, video: Video) -> None:
    """An FLV recording's MP4 beside it (stream copy: the timestamps were made continuous while recording)."""
    target = storage.flv_mp4_path(task)
    _build(storage, task, video, target, lambda: build_mp4([Run([storage.flv_path(task)])], target), "the .flv file")


def _remux_dash(storage: Storage, task: Task, segments: list[Segment], video: Video) -> None:
    """One MP4 muxing the DASH recording's video and audio tracks; on failure the record stays the MPD.
    Init sections are numbered over every row of a track (done or not), as the job numbered them."""
    done = [s for s in sorted(segments, key=lambda s: s.index) if s.status is SegmentStatus.DONE]
    tracks: dict[str, Sequence[Run]] = {}
    for kind in DASH_KINDS:
        entries = []
        previous: Segment | None = None
        for segment in (s for s in done if dash_kind(s.index) == kind):
            breaks = previous is not None and (segment.discontinuity or segment.index != previous.index + 2)
            path = storage.dash_segment_path(task.id, segment.index)
            entries.append((path, storage.dash_init_of(task.id, segments, segment), breaks))
            previous = segment
        tracks[kind] = list(runs_of(entries))
    target = storage.dash_mp4_path(task)
    _build(storage, task, video, target, lambda: build_tracks_mp4(tracks, target), "the DASH manifest")


def _picture_source(storage: Storage, task: Task, segments: list[Segment], video: Video) -> Path | list[Path] | None:
    done = [s for s in sorted(segments, key=lambda s: s.index) if s.status is SegmentStatus.DONE]
    if video.format is VideoFormat.DASH:
        pictures = [s for s in done if dash_kind(s.index) == "video"]
        chosen = _tenth(pictures)
        if chosen is None:
            return None
        init = storage.dash_init_of(task.id, segments, chosen)
        media = storage.dash_segment_path(task.id, chosen.index)
        return [init, media] if init else [media]
    if video.format is not VideoFormat.HLS and task.resource_type is not ResourceType.HLS:
        path = Path(video.file_path)
        return path if path.is_absolute() else storage.root / path
    if not done:
        return None
    # The segment about 10% in (by duration), opened with its init section: the playlist needs no parsing.
    total, wanted = sum(s.duration for s in done), 0.0
    chosen = done[0]
    for segment in done:
        if wanted + segment.duration > total * 0.1:
            chosen = segment
            break
        wanted += segment.duration
    init = storage.init_of(task.id, done, chosen)
    media = storage.final_segment_path(task.id, chosen)
    return [init, media] if init else [media]


def _tenth(segments: list[Segment]) -> Segment | None:
    """The segment about 10% in, by duration."""
    total, wanted = sum(s.duration for s in segments), 0.0
    for segment in segments:
        if wanted + segment.duration > total * 0.1:
            return segment
        wanted += segment.duration
    return segments[0] if segments else None


def _duration(task: Task, video: Video) -> float:
    # Inside one chosen HLS or DASH segment the 10% point is its start; whole files seek to 10% of their length.
    # An HLS recording's MP4 too takes its picture from the segment: a fragmented MP4 has no index to seek
    # with, and the user waits for the thumbnail after the last segment.
    if task.resource_type is ResourceType.HLS or video.format in (VideoFormat.HLS, VideoFormat.DASH):
        return 0.0
    return video.duration_seconds
