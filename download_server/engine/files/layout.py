"""Where a task's files live under STORAGE_DIR, and the one standard naming function for finished files."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from download_server.domain.models import Segment, Task

PART_SUFFIX = ".part"
# Task ids are UUIDs; anything else must never become a path component (no "..", no slashes).
_TASK_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
_UNSAFE = re.compile(r"[^0-9A-Za-z_-]")
# Folders holding one folder per task, and folders holding files named by the task's standard stem.
_TASK_FOLDERS = ("hls", "dash")
_NAMED_FOLDERS = ("mp4", "images", "flv")


def standard_file_name(liveroom_id: str, video_id: str, day: date, task_id: str) -> str:
    """`<liveroom id>_<video id>_<YYYYMMDD>_<task id prefix>`: the stem of every MP4 and image file.

    Both ids are user input, so anything outside [A-Za-z0-9_-] becomes "_" and the name can never
    climb out of its folder or collide with a temp name. The task id prefix keeps two users (or two
    tasks) downloading the same video on the same day from writing one file.
    """
    room = _UNSAFE.sub("_", liveroom_id) or "_"
    video = _UNSAFE.sub("_", video_id) or "_"
    return f"{room}_{video}_{day:%Y%m%d}_{_UNSAFE.sub('_', task_id)[:8]}"


DASH_KINDS = ("video", "audio")


def dash_kind(index: int) -> str:
    """The track of a DASH segment row (even indexes: video, odd: audio)."""
    return DASH_KINDS[index % 2]


def init_ordinals(segments: Iterable[Segment]) -> dict[str, int]:
    """Number each distinct init section by first use in index order (stable as a live stream grows)."""
    ordinals: dict[str, int] = {}
    for segment in sorted(segments, key=lambda s: s.index):
        if segment.init_uri and segment.init_uri not in ordinals:
            ordinals[segment.init_uri] = len(ordinals)
    return ordinals


def temp_path(final: Path) -> Path:
    """The name a file is written under until it is complete (then renamed onto `final`)."""
    return final.with_name(final.name + PART_SUFFIX)


def head_marker(temp: Path) -> Path:
    """Beside a `.part` whose head is a hole (engine/files/growing.py: the bytes are in the store's open
    upload), the marker that says so; it ends in .part like every unfinished file."""
    return temp.with_name(temp.name.removesuffix(PART_SUFFIX) + ".head" + PART_SUFFIX)


def ranged_paths(temp: Path) -> tuple[Path, Path]:
    """(work file, progress sidecar) of a ranged download whose single-connection temp file is `temp`.

    Both end in .part like every unfinished file (find_image and the clean-up rely on it), and neither is
    `temp` itself: a single-connection .part is a contiguous prefix, a ranged work file is not.
    """
    stem = temp.name.removesuffix(PART_SUFFIX)
    return temp.with_name(f"{stem}.ranged{PART_SUFFIX}"), temp.with_name(f"{stem}.ranges{PART_SUFFIX}")


class Storage:
    """The API.md layout: hls/<task_id>/{index.m3u8, init_<k>.mp4, ts/<index>.ts|.m4s}, mp4/, images/."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    # HLS
    def hls_dir(self, task_id: str) -> Path:
        if not _TASK_ID.fullmatch(task_id):
            raise ValueError(f"not a task id: {task_id!r}")
        return self.root / "hls" / task_id

    def segment_path(self, task_id: str, index: int, extension: str) -> Path:
        """A media segment, named by its index only (never by anything taken from its URL)."""
        if index < 0 or extension not in ("ts", "m4s"):
            raise ValueError(f"bad segment {index}.{extension}")
        return self.hls_dir(task_id) / "ts" / f"{index}.{extension}"

    def init_path(self, task_id: str, ordinal: int) -> Path:
        """The ordinal-th distinct EXT-X-MAP init section of the stream."""
        return self.hls_dir(task_id) / f"init_{ordinal}.mp4"

    def playlist_path(self, task_id: str) -> Path:
        return self.hls_dir(task_id) / "index.m3u8"

    def final_segment_path(self, task_id: str, segment: Segment) -> Path:
        """Where a segment's file is: fMP4 media (it has an init section) as .m4s, MPEG-TS as .ts."""
        return self.segment_path(task_id, segment.index, "m4s" if segment.init_uri else "ts")

    def init_of(self, task_id: str, segments: Iterable[Segment], segment: Segment) -> Path | None:
        """The init section file `segment` plays with (numbered by first use, as the local playlist does)."""
        if not segment.init_uri:
            return None
        return self.init_path(task_id, init_ordinals(segments)[segment.init_uri])

    def hls_mp4_path(self, task: Task) -> Path:
        """The one MP4 of an HLS recording (OUTPUT_FORMAT_MP4), beside its playlist."""
        return self.hls_dir(task.id) / f"{self.file_stem(task)}.mp4"

    # DASH: dash/<task_id>/{manifest.mpd, <kind>_init_<k>.mp4, <kind>_<n>.m4s}. A segment row's index
    # interleaves the tracks (2n: the video's n-th segment, 2n+1: the audio's), so each track appends on its own.
    def dash_dir(self, task_id: str) -> Path:
        if not _TASK_ID.fullmatch(task_id):
            raise ValueError(f"not a task id: {task_id!r}")
        return self.root / "dash" / task_id

    def dash_segment_path(self, task_id: str, index: int) -> Path:
        """A DASH media segment, named by its track (representation kind) and its number in that track."""
        if index < 0:
            raise ValueError(f"bad segment {index}")
        return self.dash_dir(task_id) / f"{dash_kind(index)}_{index // 2}.m4s"

    def dash_init_path(self, task_id: str, kind: str, ordinal: int) -> Path:
        if kind not in DASH_KINDS or ordinal < 0:
            raise ValueError(f"bad init section {kind} {ordinal}")
        return self.dash_dir(task_id) / f"{kind}_init_{ordinal}.mp4"

    def dash_init_of(self, task_id: str, segments: Iterable[Segment], segment: Segment) -> Path | None:
        """The init section file a DASH segment plays with (numbered by first use within its track)."""
        if not segment.init_uri:
            return None
        kind = dash_kind(segment.index)
        ordinals = init_ordinals(s for s in segments if dash_kind(s.index) == kind)
        return self.dash_init_path(task_id, kind, ordinals[segment.init_uri])

    def dash_manifest_path(self, task_id: str) -> Path:
        return self.dash_dir(task_id) / "manifest.mpd"

    def dash_mp4_path(self, task: Task) -> Path:
        """The one MP4 of a DASH recording (OUTPUT_FORMAT_MP4), beside its manifest."""
        return self.dash_dir(task.id) / f"{self.file_stem(task)}.mp4"

    def thumbnail_path(self, task_id: str) -> Path:
        if not _TASK_ID.fullmatch(task_id):
            raise ValueError(f"not a task id: {task_id!r}")
        return self.root / "thumbnails" / f"{task_id}.jpg"

    # Single files
    def file_stem(self, task: Task) -> str:
        # The creation date, not today's: a download resumed after midnight keeps its name.
        return standard_file_name(task.liveroom_id, task.video_id, task.create_time.date(), task.id)

    def mp4_path(self, task: Task) -> Path:
        return self.root / "mp4" / f"{self.file_stem(task)}.mp4"

    def flv_path(self, task: Task) -> Path:
        """An HTTP-FLV recording (written as `<name>.flv.part` until it is over)."""
        return self.root / "flv" / f"{self.file_stem(task)}.flv"

    def flv_mp4_path(self, task: Task) -> Path:
        """The MP4 of an FLV recording (OUTPUT_FORMAT_MP4), beside its .flv."""
        return self.root / "flv" / f"{self.file_stem(task)}.mp4"

    def image_path(self, task: Task, extension: str) -> Path:
        if not extension.isalnum():
            raise ValueError(f"bad image extension {extension!r}")
        return self.root / "images" / f"{self.file_stem(task)}.{extension}"

    def image_temp_path(self, task: Task) -> Path:
        """Images are written before their type is known, so the temp name has no extension."""
        return self.root / "images" / f"{self.file_stem(task)}{PART_SUFFIX}"

    def find_image(self, task: Task) -> Path | None:
        folder = self.root / "images"
        stem = self.file_stem(task)
        for candidate in sorted(folder.glob(f"{stem}.*")) if folder.is_dir() else []:
            if candidate.suffix != PART_SUFFIX:
                return candidate
        return None

    # Keys: the same layout in an object store (API.md: "under the STORAGE_URL prefix")
    def key(self, path: Path) -> str:
        """The object key of a file in the work area: its path relative to the root, with forward slashes."""
        return path.relative_to(self.root).as_posix()

    def task_prefixes(self, task: Task) -> list[str]:
        """Key prefixes that hold every file of the task and nothing of another's (its folders, the files
        named by its stem: the stem ends in the task id's prefix, and "." keeps `abc` from matching `abcd`)."""
        self.hls_dir(task.id)  # refuses anything but a task id
        stem = self.file_stem(task)
        folders = [f"{kind}/{task.id}/" for kind in _TASK_FOLDERS]
        named = [f"{kind}/{stem}." for kind in _NAMED_FOLDERS]
        return [*folders, *named, f"thumbnails/{task.id}.jpg"]

    # Ownership: which paths are a task's own (blocking: resolving follows symlinks on disk)
    def resolve(self, file_path: str) -> Path:
        """`file_path` (relative to the root, or absolute) with every symlink and `..` resolved."""
        candidate = Path(file_path)
        return (candidate if candidate.is_absolute() else self.root / candidate).resolve()

    def owns(self, task: Task, resolved: Path) -> bool:
        """Whether a resolved path is the task's own: inside its folders, or one of the files named for it.

        Resolved first, so a `..` or a symlink leading out of the task's folder is not the task's."""
        if not _TASK_ID.fullmatch(task.id):
            return False
        for kind in _TASK_FOLDERS:
            folder = self.root / kind / task.id
            if resolved != folder and resolved.is_relative_to(folder):
                return True
        if resolved == self.root / "thumbnails" / f"{task.id}.jpg":
            return True
        named = resolved.parent in {self.root / kind for kind in _NAMED_FOLDERS}
        return named and resolved.name.startswith(self.file_stem(task) + ".")

    def relative(self, file_path: str) -> str:
        """The path as responses show it: relative to the root; '' for one outside it (never an absolute path)."""
        candidate = Path(file_path)
        if not candidate.is_absolute():
            return file_path
        return str(candidate.relative_to(self.root)) if candidate.is_relative_to(self.root) else ""

    # Clean-up (blocking: call through a thread)
    def delete_files(self, task: Task) -> None:
        """Remove everything the task wrote, finished or partial. Missing files are fine."""
        shutil.rmtree(self.hls_dir(task.id), ignore_errors=True)
        shutil.rmtree(self.dash_dir(task.id), ignore_errors=True)
        self.thumbnail_path(task.id).unlink(missing_ok=True)
        mp4 = self.mp4_path(task)
        mp4_temp = temp_path(mp4)
        for path in (mp4, mp4_temp, head_marker(mp4_temp), *ranged_paths(mp4_temp), self.image_temp_path(task)):
            path.unlink(missing_ok=True)
        flv = self.flv_path(task)
        for path in (flv, temp_path(flv), self.flv_mp4_path(task)):
            path.unlink(missing_ok=True)
        folder = self.root / "images"
        if folder.is_dir():
            for path in folder.glob(f"{self.file_stem(task)}.*"):
                path.unlink(missing_ok=True)
