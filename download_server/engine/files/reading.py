"""StorageRecordingFiles: ReadVideo's files (media, thumbnail, a file of an HLS or DASH recording), read in chunks."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import AsyncGenerator
from pathlib import Path, PurePosixPath

from download_server.domain.models import Video, VideoFileKind, VideoFormat
from download_server.domain.ports import FileChunk, MediaStore, MediaStoreError
from download_server.engine.files.layout import Storage
from mediadl_common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable

CHUNK_BYTES = 1024 * 1024  # API.md: at most 1 MiB a message
_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".flv": "video/x-flv",
    ".jpg": "image/jpeg",
}


class StorageRecordingFiles:
    """Every path is resolved (symlinks followed) and must stay inside the recording: its task folder,
    its media file, or its thumbnail. Anything else is NOT_FOUND, exactly like a file that is not there."""

    def __init__(self, storage: Storage, chunk_bytes: int = CHUNK_BYTES, media: MediaStore | None = None) -> None:
        self._storage = storage
        self._chunk = chunk_bytes
        self._media = media if media is not None and media.remote else None

    async def read(self, video: Video, kind: VideoFileKind, path: str, offset: int) -> AsyncGenerator[FileChunk, None]:
        if offset < 0:
            raise InvalidArgument.field("offset", "must be >= 0")
        if self._media is not None:
            try:
                async for chunk in self._read_stored(self._media, video, kind, path, offset):
                    yield chunk
            except MediaStoreError as exc:
                raise Unavailable(f"the media store could not be read: {exc}") from None
            return
        target = await asyncio.to_thread(self._locate, video, kind, path)
        size = (await asyncio.to_thread(target.stat)).st_size
        if offset > size:
            raise InvalidArgument.field("offset", f"is past the end of the file ({size} bytes)")
        content_type = _TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0] or ""
        content_type = content_type or "application/octet-stream"
        with await asyncio.to_thread(target.open, "rb") as handle:
            await asyncio.to_thread(handle.seek, offset)
            position = offset
            while True:
                # One chunk in memory at a time: a 1 GiB file costs 1 MiB of RSS, whatever the reader's speed.
                data = await asyncio.to_thread(handle.read, self._chunk)
                if not data and position > offset:
                    return
                yield FileChunk(data, position, size, content_type)
                position += len(data)
                if not data or position >= size:
                    return

    async def _read_stored(
        self, media: MediaStore, video: Video, kind: VideoFileKind, path: str, offset: int
    ) -> AsyncGenerator[FileChunk, None]:
        """The same answers from the bucket: one ranged GET from `offset`, streamed in chunks."""
        key = self._key(video, kind, path)
        found = await media.stat(key)
        if found is None:
            raise NotFound("no such file in this recording", reason="FILE_NOT_FOUND")
        size = found.size
        if offset > size:
            raise InvalidArgument.field("offset", f"is past the end of the file ({size} bytes)")
        name = PurePosixPath(key).name
        content_type = _TYPES.get(PurePosixPath(key).suffix.lower()) or mimetypes.guess_type(name)[0] or ""
        content_type = content_type or "application/octet-stream"
        if offset == size:
            yield FileChunk(b"", offset, size, content_type)  # as from a file: one empty message at the end
            return
        position = offset
        async for data in media.read(key, offset, self._chunk):
            yield FileChunk(data, position, size, content_type)
            position += len(data)

    def _key(self, video: Video, kind: VideoFileKind, path: str) -> str:
        """The object key to read, checked exactly like a path on disk (never outside the recording)."""
        if kind is VideoFileKind.THUMBNAIL:
            if not video.thumbnail_path:
                raise NotFound("this recording has no thumbnail", reason="THUMBNAIL_NOT_FOUND")
            return _key_inside(self._storage.relative(video.thumbnail_path), "thumbnails/")
        if path:
            # The recording's own folder, as on disk: dash/<task_id>/ for a DASH one, else hls/<task_id>/.
            return self._storage.key(self._folder(video)) + "/" + _relative(path).as_posix()
        _single_file(video)
        return _key_inside(self._storage.relative(video.file_path), "")

    def _locate(self, video: Video, kind: VideoFileKind, path: str) -> Path:
        """Blocking: the resolved file to read, or NotFound / InvalidArgument / FailedPrecondition."""
        root = self._storage.root
        if kind is VideoFileKind.THUMBNAIL:
            if not video.thumbnail_path:
                raise NotFound("this recording has no thumbnail", reason="THUMBNAIL_NOT_FOUND")
            return _inside(_under(root, video.thumbnail_path), root / "thumbnails")
        if path:
            folder = self._folder(video)
            return _inside(folder / _relative(path), folder)
        _single_file(video)
        return _inside(_under(root, video.file_path), root)

    def _folder(self, video: Video) -> Path:
        """The recording's task folder: dash/<task_id> for a DASH recording (its MPD, or the MP4 built
        beside it), else hls/<task_id>."""
        relative = self._storage.relative(video.file_path)
        if video.format is VideoFormat.DASH or relative.startswith("dash/"):
            return self._storage.dash_dir(video.task_id)
        return self._storage.hls_dir(video.task_id)


def _single_file(video: Video) -> None:
    """A read without `path` is of the one media file: an HLS or DASH recording without MP4 has none."""
    if video.format is VideoFormat.DASH:
        raise FailedPrecondition(
            "a DASH recording is an MPD and segments: read them with `path` (e.g. manifest.mpd), or create "
            "the task with output_format OUTPUT_FORMAT_MP4 for one file",
            reason="NO_SINGLE_FILE",
        )
    if video.format is VideoFormat.HLS:
        raise FailedPrecondition(
            "an HLS recording is a playlist and segments: read them with `path` (e.g. index.m3u8), or create "
            "the task with output_format OUTPUT_FORMAT_MP4 for one file",
            reason="NO_SINGLE_FILE",
        )


def _under(root: Path, file_path: str) -> Path:
    # Records written before paths became relative hold absolute ones; both resolve against the root.
    candidate = Path(file_path)
    return candidate if candidate.is_absolute() else root / candidate


def _relative(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or "\\" in path or "\x00" in path:
        raise InvalidArgument.field("path", "must be a file of the recording, relative to its folder")
    return relative


def _key_inside(relative: str, folder: str) -> str:
    """A stored relative path as a key under `folder`: nothing absolute, no `..`, no backslash."""
    key = PurePosixPath(relative)
    if not relative or key.is_absolute() or ".." in key.parts or "\\" in relative or not relative.startswith(folder):
        raise NotFound("no such file in this recording", reason="FILE_NOT_FOUND")
    return key.as_posix()


def _inside(candidate: Path, folder: Path) -> Path:
    resolved = candidate.resolve()
    folder = folder.resolve()
    if resolved == folder or not resolved.is_relative_to(folder) or not resolved.is_file():
        raise NotFound("no such file in this recording", reason="FILE_NOT_FOUND")
    return resolved
