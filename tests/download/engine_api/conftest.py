"""Fixtures of the engine-through-gRPC tests: the local origin and the download server with a fast engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.download.api import download_settings, running_download_server
from tests.download.engine.flv_origin import FlvOrigin, make_flv
from tests.download.engine_api.flows import Downloads, fast_engine, load_manifest
from tests.support.origin import Origin
from tests.support.s3 import StorageBackend

ServerFactory = Callable[..., AbstractAsyncContextManager[Downloads]]


@pytest.fixture(scope="session")
def flv_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s H.264/AAC FLV clip (made with ffmpeg once per session) for the FLV API tests."""
    return make_flv(tmp_path_factory.mktemp("flv") / "clip.flv", 2)


@pytest.fixture
async def flv(flv_media: Path) -> AsyncIterator[FlvOrigin]:
    """An HTTP-FLV origin serving `flv_media` (live or VOD as each test scripts it)."""
    async with FlvOrigin(flv_media).serving() as served:
        yield served


@pytest.fixture
async def origin(media_fixtures: Path, tmp_path: Path) -> AsyncIterator[Origin]:
    async with Origin.serving(media_fixtures, tmp_path) as served:
        yield served


@pytest.fixture(scope="session")
def manifest(media_fixtures: Path) -> dict[str, Any]:
    return load_manifest(media_fixtures)


@pytest.fixture
def serve(origin: Origin, tmp_path: Path) -> ServerFactory:
    """serve(database_url, **env) -> async context of a server on it; the same storage dir every time, so a
    test can stop a server and start another on the same database and files (a restart)."""

    @asynccontextmanager
    async def start(database_url: str, *, engine_overrides: Any = None, **env: str) -> AsyncIterator[Downloads]:
        settings = download_settings(database_url, tmp_path / "storage", DOWNLOAD_ALLOW_PRIVATE_NETWORKS="true", **env)
        engine = fast_engine(settings)
        if engine_overrides is not None:
            engine = engine_overrides(engine)
        async with running_download_server(settings, engine=engine) as api:
            yield Downloads(api, origin)

    return start


@pytest.fixture
async def downloads(serve: ServerFactory, make_database_url: Callable[[str], str]) -> AsyncIterator[Downloads]:
    """A server on SQLite (the storage-independent cases)."""
    async with serve(make_database_url("sqlite")) as flows:
        yield flows


@pytest.fixture
async def backend_downloads(
    serve: ServerFactory, make_database_url: Callable[[str], str], storage_backend: StorageBackend
) -> AsyncIterator[Downloads]:
    """A server on SQLite with each media store in turn: the storage directory, then S3 (moto)."""
    async with serve(make_database_url("sqlite"), **storage_backend.env()) as flows:
        yield flows


@pytest.fixture
async def both_downloads(serve: ServerFactory, database_url: str) -> AsyncIterator[Downloads]:
    """A server on SQLite, then on PostgreSQL (the main lifecycle)."""
    async with serve(database_url) as flows:
        yield flows
