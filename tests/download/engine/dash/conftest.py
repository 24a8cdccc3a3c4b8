"""DASH engine fixtures: the session's ffmpeg-made DASH media, served by a local origin of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.download.engine.dash.media import make_all
from tests.support.origin import Origin


@pytest.fixture(scope="session")
def dash_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_all(tmp_path_factory.mktemp("dash-media"))


@pytest.fixture
async def origin(dash_media: Path, tmp_path: Path) -> AsyncIterator[Origin]:
    async with Origin.serving(dash_media, tmp_path) as served:
        yield served
