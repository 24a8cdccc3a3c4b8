"""S3Media: the media store in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, SeaweedFS, R2), via aiobotocore.

Why aiobotocore: it is botocore (the AWS SDK's own signing, retries, endpoint and credential chain: the
usual AWS_* variables, profiles, instance roles) on aiohttp, which the engine already runs on, so uploads
and ranged GETs are coroutines on the server's event loop: no thread per request as boto3 would need, and
no second HTTP stack as with the MinIO SDK (which is synchronous; its async fork is not the maintained
one). Nothing here signs a request by hand.

Visibility: a single PUT and a completed multipart upload appear whole or not at all, so a key never
shows half a file. Memory: a body is read from the work area one part (at most 16 MiB) at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from download_server.domain.ports import MediaStoreError, PartUpload, StoredObject, UploadedPart

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import ObjectIdentifierTypeDef

# One PUT up to this size; above it, a multipart upload of PART_BYTES parts (S3's minimum part is 5 MiB).
SINGLE_PUT_BYTES = 16 * 1024 * 1024
PART_BYTES = 8 * 1024 * 1024
MAX_PARTS = 10_000  # S3's limit: a larger file gets larger parts
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
_WRITE_BLOCK = 1024 * 1024
_MISSING = ("404", "NoSuchKey", "NotFound")


@dataclass(frozen=True)
class S3Location:
    """Where and how to reach the bucket. The secret stays out of repr() (and so out of any log line)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str, **rest: Any) -> S3Location:
        """`s3://bucket/prefix` (the prefix optional); ValueError for anything else."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("STORAGE_URL must be s3://bucket/prefix")
        prefix = parts.path.strip("/")
        if any(piece in ("", ".", "..") for piece in prefix.split("/")) and prefix:
            raise ValueError("STORAGE_URL's prefix must be plain folder names")
        return cls(bucket=parts.netloc, prefix=prefix, **rest)


class S3Media:
    remote = True

    def __init__(self, location: S3Location, *, max_connections: int = 32) -> None:
        self.location = location
        self._base = f"{location.prefix}/" if location.prefix else ""
        self._config = AioConfig(
            max_pool_connections=max_connections,
            retries={"max_attempts": 5, "mode": "standard"},
            # Only what S3 requires: several S3-compatible stores refuse the newer default checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"} if location.endpoint_url else None,
        )
        self._client: S3Client | None = None
        self._stack: AsyncExitStack | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening = asyncio.Lock()

    def describe(self) -> str:
        where = self.location.endpoint_url or "AWS"
        return f"s3://{self.location.bucket}/{self.location.prefix} at {where}"

    async def client(self) -> S3Client:
        """The one client of this event loop (a client's connection pool belongs to the loop that made it)."""
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop:
            return self._client
        if self._loop is not loop:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._client is None or self._loop is not loop:
                stack = AsyncExitStack()
                session = get_session()
                made = session.create_client(
                    "s3",
                    endpoint_url=self.location.endpoint_url,
                    region_name=self.location.region,
                    aws_access_key_id=self.location.access_key_id,
                    aws_secret_access_key=self.location.secret_access_key,
                    config=self._config,
                )
                self._client = await stack.enter_async_context(made)
                self._stack, self._loop = stack, loop
        return self._client

    async def close(self) -> None:
        stack, self._stack, self._client, self._loop = self._stack, None, None, None
        if stack is not None:
            with contextlib.suppress(RuntimeError):  # a loop already closed has nothing left to close
                await stack.aclose()

    def full_key(self, key: str) -> str:
        return self._base + key

    async def check(self) -> None:
        """One LIST of at most one key: the bucket exists and these credentials may list it."""
        with _store_errors("listing", f"s3://{self.location.bucket}/{self._base}"):
            client = await self.client()
            await client.list_objects_v2(Bucket=self.location.bucket, Prefix=self._base, MaxKeys=1)

    # Writing
    async def publish(self, key: str, path: Path, sha256: str = "") -> None:
        with _store_errors("publishing", key):
            size = (await asyncio.to_thread(path.stat)).st_size
            metadata = {"sha256": sha256} if sha256 else {}
            if size <= SINGLE_PUT_BYTES:
                body = await asyncio.to_thread(path.read_bytes)
                client = await self.client()
                bucket, full = self.location.bucket, self.full_key(key)
                await client.put_object(Bucket=bucket, Key=full, Body=body, Metadata=metadata)
                return
            upload = await self.start_upload(key, metadata)
            part = max(PART_BYTES, -(-size // MAX_PARTS))
            try:
                for offset in range(0, size, part):
                    await upload.send(path, offset, min(part, size - offset))
                await upload.complete()
            except BaseException:
                await asyncio.shield(upload.abort())  # never leave the parts billed and invisible
                raise

    async def start_upload(self, key: str, metadata: dict[str, str] | None = None) -> S3PartUpload:
        with _store_errors("starting an upload of", key):
            client = await self.client()
            made = await client.create_multipart_upload(
                Bucket=self.location.bucket, Key=self.full_key(key), Metadata=metadata or {}
            )
            return S3PartUpload(self, key, made["UploadId"], [])

    async def open_uploads(self, key: str) -> list[PartUpload]:
        with _store_errors("listing the uploads of", key):
            client = await self.client()
            full = self.full_key(key)
            found: list[PartUpload] = []
            answer = await client.list_multipart_uploads(Bucket=self.location.bucket, Prefix=full)
            for upload in answer.get("Uploads", []):
                if upload.get("Key") != full or "UploadId" not in upload:
                    continue
                parts = await self._parts(full, upload["UploadId"])
                found.append(S3PartUpload(self, key, upload["UploadId"], parts))
            return found

    async def _parts(self, full: str, upload_id: str) -> list[UploadedPart]:
        client = await self.client()
        paginator = client.get_paginator("list_parts")
        parts = []
        async for page in paginator.paginate(Bucket=self.location.bucket, Key=full, UploadId=upload_id):
            for part in page.get("Parts", []):
                parts.append(UploadedPart(part["PartNumber"], part["Size"], part["ETag"]))
        return sorted(parts, key=lambda p: p.number)

    # Reading
    async def listing(self, prefix: str) -> dict[str, int]:
        with _store_errors("listing", prefix):
            client = await self.client()
            paginator = client.get_paginator("list_objects_v2")
            found: dict[str, int] = {}
            async for page in paginator.paginate(Bucket=self.location.bucket, Prefix=self.full_key(prefix)):
                for item in page.get("Contents", []):
                    found[item["Key"][len(self._base) :]] = item["Size"]
            return found

    async def stat(self, key: str) -> StoredObject | None:
        with _store_errors("looking up", key):
            client = await self.client()
            try:
                head = await client.head_object(Bucket=self.location.bucket, Key=self.full_key(key))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _MISSING:
                    return None
                raise
            return StoredObject(key, head["ContentLength"], head.get("Metadata", {}).get("sha256", ""))

    async def fetch(self, key: str, path: Path) -> None:
        temp = path.with_name(path.name + ".part")
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        handle = await asyncio.to_thread(temp.open, "wb")
        try:
            async for data in self.read(key, 0, _WRITE_BLOCK):
                await asyncio.to_thread(handle.write, data)
        finally:
            await asyncio.to_thread(handle.close)
        await asyncio.to_thread(os.replace, temp, path)

    async def read(self, key: str, offset: int, chunk: int) -> AsyncGenerator[bytes, None]:
        with _store_errors("reading", key):
            client = await self.client()
            bucket, full = self.location.bucket, self.full_key(key)
            answer = await client.get_object(Bucket=bucket, Key=full, Range=f"bytes={offset}-")
            body = answer["Body"]
            try:
                pending = b""
                while data := await body.read(chunk):
                    # Whole chunks (the body answers what has arrived): fewer, fuller messages to the reader.
                    pending += data
                    while len(pending) >= chunk:
                        yield pending[:chunk]
                        pending = pending[chunk:]
                if pending:
                    yield pending
            finally:
                body.close()

    # Removing
    async def remove(self, prefixes: Sequence[str]) -> None:
        with _store_errors("removing", ", ".join(prefixes)):
            client = await self.client()
            for prefix in prefixes:
                keys = [self.full_key(key) for key in await self.listing(prefix)]
                for start in range(0, len(keys), _DELETE_BATCH):
                    batch: list[ObjectIdentifierTypeDef] = [{"Key": key} for key in keys[start : start + _DELETE_BATCH]]
                    await client.delete_objects(Bucket=self.location.bucket, Delete={"Objects": batch, "Quiet": True})
            await self.abort_uploads(prefixes)

    async def abort_uploads(self, prefixes: Sequence[str]) -> int:
        with _store_errors("aborting the uploads under", ", ".join(prefixes)):
            client = await self.client()
            aborted = 0
            for prefix in prefixes:
                paginator = client.get_paginator("list_multipart_uploads")
                async for page in paginator.paginate(Bucket=self.location.bucket, Prefix=self.full_key(prefix)):
                    for upload in page.get("Uploads", []):
                        await _abort(client, self.location.bucket, upload["Key"], upload["UploadId"])
                        aborted += 1
            return aborted


class S3PartUpload:
    """One multipart upload: parts go up in order, each read from the work area in a thread."""

    def __init__(self, media: S3Media, key: str, upload_id: str, parts: list[UploadedPart]) -> None:
        self.key = key
        self.upload_id = upload_id
        self.parts = parts
        self._media = media

    async def send(self, path: Path, offset: int, size: int) -> None:
        with _store_errors("uploading a part of", self.key):
            # A file-like body: aiohttp streams it in 64 KiB reads, so a part never sits in memory whole.
            body = await asyncio.to_thread(FileSlice.open, path, offset, size)
            try:
                number = len(self.parts) + 1
                client = await self._media.client()
                answer = await client.upload_part(
                    Bucket=self._media.location.bucket,
                    Key=self._media.full_key(self.key),
                    UploadId=self.upload_id,
                    PartNumber=number,
                    Body=cast(IO[bytes], body),  # a RawIOBase is an IO[bytes]; the stubs do not say so
                    ContentLength=size,
                )
            finally:
                body.close()
            self.parts.append(UploadedPart(number, size, answer["ETag"]))

    async def complete(self) -> None:
        with _store_errors("completing the upload of", self.key):
            client = await self._media.client()
            await client.complete_multipart_upload(
                Bucket=self._media.location.bucket,
                Key=self._media.full_key(self.key),
                UploadId=self.upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in self.parts]},
            )

    async def abort(self) -> None:
        with _store_errors("aborting the upload of", self.key):
            client = await self._media.client()
            await _abort(client, self._media.location.bucket, self._media.full_key(self.key), self.upload_id)


async def _abort(client: S3Client, bucket: str, full_key: str, upload_id: str) -> None:
    try:
        await client.abort_multipart_upload(Bucket=bucket, Key=full_key, UploadId=upload_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
            raise


class FileSlice(io.RawIOBase):
    """Bytes [offset, offset + size) of a file as a seekable stream of exactly `size` bytes (a part's body)."""

    def __init__(self, handle: io.BufferedReader, offset: int, size: int) -> None:
        super().__init__()
        self._handle = handle
        self._offset = offset
        self._size = size
        self._position = 0

    @classmethod
    def open(cls, path: Path, offset: int, size: int) -> FileSlice:
        handle = path.open("rb")
        held = os.fstat(handle.fileno()).st_size
        if held < offset + size:
            handle.close()
            raise OSError(f"{path} holds {held} bytes, not the {offset + size} a part needs")
        return cls(handle, offset, size)

    def __len__(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = min(max(base + position, 0), self._size)
        return self._position

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        self._handle.seek(self._offset + self._position)
        got: int = self._handle.readinto(memoryview(buffer)[:wanted])
        self._position += got
        return got

    def close(self) -> None:
        self._handle.close()
        super().close()


@contextlib.contextmanager
def _store_errors(what: str, key: str) -> Iterator[None]:
    """botocore's and aiohttp's errors as the port's MediaStoreError (the S3 error code, never a credential)."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise MediaStoreError(f"{what} {key}: {error.get('Code', '?')} {error.get('Message', '')}".strip()) from exc
    except (BotoCoreError, aiohttp.ClientError, TimeoutError) as exc:
        raise MediaStoreError(f"{what} {key}: {type(exc).__name__}") from exc
