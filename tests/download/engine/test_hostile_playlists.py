"""Every number a playlist gives is checked at parse: a hostile one is bad_content, never a wedged task."""

from __future__ import annotations

import asyncio
import re

import pytest

from download_server.domain.models import TaskStatus
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.jobs import hls_playlist
from tests.download.engine.conftest import Harness

URL = "https://cdn.example.com/live/index.m3u8"


def _media(*lines: str, target: str = "4", sequence: str = "0") -> str:
    body = [f"#EXTM3U\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{sequence}", *lines, "#EXT-X-ENDLIST"]
    return "\n".join(body) + "\n"


@pytest.mark.parametrize(
    "text",
    [
        _media("#EXTINF:inf,", "a.ts"),
        _media("#EXTINF:nan,", "a.ts"),
        _media("#EXTINF:-1,", "a.ts"),
        _media("#EXTINF:1e300,", "a.ts"),
        _media("#EXTINF:abc,", "a.ts"),
        _media("#EXTINF:4,", "a.ts", target="inf"),
        _media("#EXTINF:4,", "a.ts", target="1e9"),
        _media("#EXTINF:4,", "a.ts", sequence="-5"),
        _media("#EXTINF:4,", "a.ts", sequence="1" + "0" * 30),
        _media("#EXTINF:4,", "#EXT-X-BYTERANGE:-10@0", "a.ts"),
        _media("#EXTINF:4,", "#EXT-X-BYTERANGE:10@-1", "a.ts"),
        _media("#EXTINF:4,", "#EXT-X-BYTERANGE:0@0", "a.ts"),
        _media("#EXTINF:4,", f"#EXT-X-BYTERANGE:{2**60}@0", "a.ts"),
        _media("#EXTINF:4,", "#EXT-X-BYTERANGE:x@y", "a.ts"),
        _media('#EXT-X-MAP:URI="i.mp4",BYTERANGE="-3@0"', "#EXTINF:4,", "a.ts"),
    ],
)
def test_hostile_numbers_are_bad_content(text: str) -> None:
    with pytest.raises(FetchError) as caught:
        hls_playlist.parse_media(text, URL)
    assert caught.value.error_type is ErrorType.BAD_CONTENT, caught.value.message


def test_a_bad_iv_is_refused() -> None:
    text = _media('#EXT-X-KEY:METHOD=AES-128,URI="k.bin",IV=0x0102', "#EXTINF:4,", "a.ts")
    with pytest.raises(FetchError, match="IV"):
        hls_playlist.parse_media(text, URL)


def test_sane_numbers_pass() -> None:
    text = _media("#EXTINF:86400,", "#EXT-X-BYTERANGE:10@0", "a.ts", target="86400", sequence=str(2**63 - 2))
    (segment,) = hls_playlist.parse_media(text, URL).segments
    assert (segment.duration, segment.byterange, segment.sequence) == (86400.0, (0, 10), 2**63 - 2)


async def test_an_infinite_duration_fails_the_task_instead_of_wedging_it(harness: Harness) -> None:
    """Finding 1 of issue 15: `#EXTINF:inf,` left the task PROCESSING and claimed again forever."""
    harness.origin.write("inf/a.ts", b"x" * 188)
    harness.origin.write("inf/index.m3u8", _media("#EXTINF:inf,", "a.ts").encode())
    task = await harness.create("inf/index.m3u8")
    async with asyncio.timeout(30):  # a hang guard: before the fix this never ended
        done = await harness.run(task)

    assert done.status is TaskStatus.FAILED
    (failure,) = await harness.store.task_failures(task.id)
    assert (failure.segment_index, failure.error_type) == (-1, "bad_content")
    assert "EXTINF duration out of range: inf" in failure.error_message
    assert harness.origin.requests["inf/index.m3u8"] == 1  # not re-claimed


async def test_an_exception_outside_the_job_fails_the_run_with_an_incident_reference(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Not only the job: an exception while writing the end state left the task runnable, re-claimed at once."""

    def broken(*_args: object, **_kwargs: object) -> str:
        raise RuntimeError("the local playlist\x00 could not be written")

    monkeypatch.setattr("download_server.engine.jobs.local_playlist.render", broken)
    task = await harness.create("hls_ts/index.m3u8")
    async with asyncio.timeout(30):  # a hang guard: before the fix the run was claimed again and again
        done = await harness.run(task)

    assert done.status is TaskStatus.FAILED
    (failure,) = await harness.store.task_failures(task.id)
    assert failure.error_type == "internal_error"
    match = re.search(r"\[incident ([0-9a-f]{12})\]", failure.error_message)
    assert match is not None and "RuntimeError: the local playlist? could not be written" in failure.error_message
    assert any(match.group(1) in r.getMessage() and r.exc_info for r in caplog.records)
    assert harness.origin.requests["hls_ts/index.m3u8"] == 1
    assert done.last_error.endswith(failure.error_message)
