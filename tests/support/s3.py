"""A real S3-compatible server for tests: moto's server mode (PyPI `moto[server]`), a subprocess on a free port.

Why moto and not MinIO: MinIO ships as a Go binary that no registry this project installs from carries,
while moto[server] is a dev dependency like any other (`make install-dev`). It speaks the S3 REST API over
HTTP (signatures checked for form, multipart uploads, ranged GETs, ListMultipartUploads), so the adapter is
exercised through aiobotocore exactly as against a real bucket.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from download_server.adapters.s3_media import S3Location, S3Media
from tests.support.net import free_port, wait_http

# moto accepts any credentials; these are placeholders, not secrets.
ACCESS_KEY = "testing-access"
SECRET_KEY = "testing-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str

    def location(self, prefix: str | None = None) -> S3Location:
        """A fresh prefix per caller: tests share the server and the bucket, never each other's objects."""
        return S3Location(
            bucket=self.bucket,
            prefix=prefix if prefix is not None else f"t-{uuid.uuid4().hex[:12]}",
            endpoint_url=self.endpoint_url,
            region=REGION,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
        )

    def media(self, prefix: str | None = None) -> S3Media:
        return S3Media(self.location(prefix))

    def env(self, location: S3Location) -> dict[str, str]:
        """The server settings (API.md) that point a download server at `location`."""
        return {
            "STORAGE_URL": f"s3://{location.bucket}/{location.prefix}",
            "S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
        }

    def client(self) -> object:
        """A plain boto3 client, to look at the bucket from outside the code under test."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


@contextmanager
def moto_server() -> Iterator[S3Server]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_http(f"{endpoint}/moto-api/", timeout=60)
        server = S3Server(endpoint, "mediadl-test")
        server.client().create_bucket(Bucket=server.bucket)  # type: ignore[attr-defined]
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class StorageBackend:
    """One of the two media stores a test runs on: `local` (the storage directory) or `s3` (a bucket prefix)."""

    name: str
    server: S3Server | None = None
    location: S3Location | None = None

    @property
    def remote(self) -> bool:
        return self.location is not None

    def media(self) -> S3Media | None:
        """A new client for the backend's bucket prefix (its owner closes it), or None: the local default."""
        return S3Media(self.location) if self.location is not None else None

    def env(self) -> dict[str, str]:
        """Server settings for this backend (none for the local one)."""
        if self.server is None or self.location is None:
            return {}
        return self.server.env(self.location)

    def keys(self) -> dict[str, int]:
        """Every object under the prefix (key relative to it -> size), read from outside the code under test."""
        if self.server is None or self.location is None:
            return {}
        client: Any = self.server.client()
        found: dict[str, int] = {}
        base = self.location.prefix + "/"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.server.bucket, Prefix=base):
            for item in page.get("Contents", []):
                found[item["Key"][len(base) :]] = item["Size"]
        return found

    def open_uploads(self) -> list[str]:
        """Keys (relative to the prefix) of multipart uploads begun and neither completed nor aborted."""
        if self.server is None or self.location is None:
            return []
        client: Any = self.server.client()
        base = self.location.prefix + "/"
        answer = client.list_multipart_uploads(Bucket=self.server.bucket, Prefix=base)
        return [upload["Key"][len(base) :] for upload in answer.get("Uploads", [])]

    def delete(self, key: str) -> None:
        if self.server is not None and self.location is not None:
            client: Any = self.server.client()
            client.delete_object(Bucket=self.server.bucket, Key=f"{self.location.prefix}/{key}")

    def download_to(self, root: Path) -> None:
        """Copy every object under the prefix into `root` with the same relative layout."""
        if self.server is None or self.location is None:
            return
        client: Any = self.server.client()
        for key in self.keys():
            target = root / key
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(self.server.bucket, f"{self.location.prefix}/{key}", str(target))
