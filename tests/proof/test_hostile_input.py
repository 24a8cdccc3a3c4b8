"""Hostile playlists through the engine: odd paths, foreign schemes, huge lines and plans, recursion, bad keys."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from download_server.domain.models import Failure, SegmentStatus, TaskStatus
from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.layout import Storage
from download_server.engine.http.guard import PolicyGuard
from download_server.engine.jobs import hls_playlist
from download_server.engine.jobs.hls_playlist import MAX_ENTRIES
from download_server.engine.scheduling.scheduler import create_scheduler
from tests.download.engine.conftest import ENGINE, Harness
from tests.download.engine.memory_leases import MemoryLeases
from tests.support.dns import StaticResolver, static_resolve
from tests.support.media import sha256
from tests.support.origin import Origin

PUBLIC = "93.184.216.34"


@pytest.fixture
async def origin(media_fixtures: Path, tmp_path: Path) -> AsyncIterator[Origin]:
    async with Origin.serving(media_fixtures, tmp_path) as served:
        yield served


@pytest.fixture
async def harness(origin: Origin, tmp_path: Path) -> AsyncIterator[Harness]:
    engine = Harness(origin, Storage(tmp_path / "storage"), ENGINE)
    yield engine
    await engine.scheduler.close()


@pytest.fixture(scope="module")
def manifest(media_fixtures: Path) -> dict[str, Any]:
    return dict(json.loads((media_fixtures / "manifest.json").read_text()))


def media_playlist(uris: list[str], *, header: tuple[str, ...] = ()) -> bytes:
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0", *header]
    for uri in uris:
        lines += ["#EXTINF:1.0,", uri]
    return ("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n").encode()


async def failures_of(harness: Harness, task_id: str) -> list[Failure]:
    return await harness.store.task_failures(task_id)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


async def test_dot_dot_uris_resolve_on_the_origin_and_files_stay_in_the_task_folder(
    harness: Harness, manifest: dict[str, Any], tmp_path: Path
) -> None:
    origin = harness.origin
    uris = [
        "../../../hls_ts/seg00.ts",
        "../../../../../../../../hls_ts/seg01.ts",  # RFC 3986: dot segments above the root are dropped
        "../../../../../../../../etc/passwd",  # names a path on the origin, never a local file
        "/hls_ts/seg03.ts",  # an absolute path is a path on the playlist's host
        "hls_ts/../../../../hls_ts/seg04.ts",
        "./../../../hls_ts/./seg05.ts",
    ]
    origin.write("hostile/a/b/index.m3u8", media_playlist(uris))
    before = files_under(tmp_path) - files_under(origin.root)
    task = await harness.create("hostile/a/b/index.m3u8")
    done = await harness.run(task)

    assert done.status is TaskStatus.PARTIAL_COMPLETED
    failures = await failures_of(harness, task.id)
    [failure] = failures
    assert (failure.segment_index, failure.error_type, failure.http_status) == (2, "http_error", 404)
    assert failure.segment_url == origin.url("etc/passwd")
    expected = manifest["hls_ts"]["segment_sha256"]
    files = harness.segment_files(task)
    assert [f.name for f in files] == ["0.ts", "1.ts", "3.ts", "4.ts", "5.ts"]  # named by index, never by URI
    assert [sha256(f) for f in files] == [expected[i] for i in (0, 1, 3, 4, 5)]
    # Nothing written anywhere but the task's folder and its thumbnail (the origin's own files aside).
    written = files_under(tmp_path) - files_under(origin.root) - before - {harness.storage.thumbnail_path(task.id)}
    task_dir = harness.storage.hls_dir(task.id)
    assert written and all(p.is_relative_to(task_dir) for p in written), sorted(map(str, written))
    assert written == {*files, harness.storage.playlist_path(task.id)}
    assert ".." not in harness.storage.playlist_path(task.id).read_text()


async def test_foreign_schemes_become_failure_records_without_any_fetch(harness: Harness) -> None:
    origin = harness.origin
    port = origin.port
    hostile = [
        "file:///etc/passwd",
        "file:/etc/shadow",
        "FILE:///etc/hosts",
        f"ftp://127.0.0.1:{port}/hls_ts/seg02.ts",
        "data:video/mp2t;base64,R0lGODlhAQABAAAAACw=",
        "javascript:alert(document.cookie)",
        f"gopher://127.0.0.1:{port}/_GET%20/hls_ts/seg00.ts",
        "\\\\evil-host\\share\\seg.ts",  # a UNC path
    ]
    origin.write("schemes/index.m3u8", media_playlist(["../hls_ts/seg00.ts", *hostile]))
    task = await harness.create("schemes/index.m3u8")
    done = await harness.run(task)

    assert done.status is TaskStatus.PARTIAL_COMPLETED
    failures = await failures_of(harness, task.id)
    by_index = {f.segment_index: f for f in failures}
    assert sorted(by_index) == list(range(1, len(hostile) + 1))
    for index in range(1, len(hostile) + 1):  # refused by the policy: one attempt, no connection
        assert (by_index[index].error_type, by_index[index].attempts) == ("url_refused", 1), by_index[index]
        assert by_index[index].segment_url.endswith(hostile[index - 1])  # resolved against the playlist
    assert all("scheme must be http or https" in by_index[i].error_message for i in range(1, 8))
    assert "backslash" in by_index[8].error_message
    assert set(origin.requests) == {"schemes/index.m3u8", "hls_ts/seg00.ts"}
    assert [f.name for f in harness.segment_files(task)] == ["0.ts"]


async def test_an_aes_key_uri_with_a_foreign_scheme_is_refused(harness: Harness) -> None:
    origin = harness.origin
    header = ('#EXT-X-KEY:METHOD=AES-128,URI="file:///dev/zero",IV=0x000102030405060708090a0b0c0d0e0f',)
    origin.write(
        "filekey/index.m3u8", media_playlist([f"../hls_aes128/seg{i:02d}.ts" for i in range(3)], header=header)
    )
    task = await harness.create("filekey/index.m3u8")
    done = await harness.run(task)

    assert done.status is TaskStatus.FAILED
    failures = await failures_of(harness, task.id)
    assert [(f.segment_index, f.error_type) for f in failures] == [(i, "url_refused") for i in range(3)]
    assert "decryption key" in failures[0].error_message
    assert set(origin.requests) == {"filekey/index.m3u8"}  # no segment fetched without its key


async def test_an_extremely_long_uri_line_fails_its_segment_only(harness: Harness) -> None:
    origin = harness.origin
    long_uri = "../hls_ts/seg01.ts?" + "a" * 1_000_000
    origin.write("long/index.m3u8", media_playlist(["../hls_ts/seg00.ts", long_uri, "../hls_ts/seg02.ts"]))
    task = await harness.create("long/index.m3u8")
    done = await harness.run(task)

    assert done.status is TaskStatus.PARTIAL_COMPLETED and done.segments_done == 2
    [failure] = await failures_of(harness, task.id)
    assert (failure.segment_index, failure.error_type) == (1, "url_refused")
    assert "longer than" in failure.error_message and len(failure.error_message) < 200
    assert "hls_ts/seg01.ts" not in origin.requests


async def test_a_playlist_over_the_byte_cap_is_refused_unread(harness: Harness) -> None:
    origin = harness.origin
    cap = ENGINE.fetch.playlist_max_bytes
    # One line longer than the cap, then a million segments: both over it, neither read into memory.
    origin.write("oneline/index.m3u8", b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n" + b"x" * (cap + 1) + b"\n")
    million = b"".join(b"#EXTINF:1,\n%d.ts\n" % i for i in range(1_000_000))
    origin.write("million/index.m3u8", b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n" + million + b"#EXT-X-ENDLIST\n")
    assert len(million) > cap
    for path in ("oneline/index.m3u8", "million/index.m3u8"):
        task = await harness.create(path)
        done = await harness.run(task)
        assert done.status is TaskStatus.FAILED, path
        [failure] = await failures_of(harness, task.id)
        assert (failure.segment_index, failure.error_type, failure.attempts) == (-1, "too_large", 1)
        assert origin.completed[path] == 0  # refused on its Content-Length, the body never read
        assert await harness.store.list_segments(task.id) == []


async def test_a_playlist_with_too_many_segments_under_the_byte_cap_is_refused_before_parsing(
    harness: Harness,
) -> None:
    origin = harness.origin
    body = b"".join(b"#EXTINF:1,\n%x\n" % i for i in range(MAX_ENTRIES + 1))
    origin.write("many/index.m3u8", b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n" + body + b"#EXT-X-ENDLIST\n")
    assert len(body) < ENGINE.fetch.playlist_max_bytes
    task = await harness.create("many/index.m3u8")
    done = await harness.run(task)

    assert done.status is TaskStatus.FAILED
    [failure] = await failures_of(harness, task.id)
    assert (failure.segment_index, failure.error_type) == (-1, "too_large")
    assert f"{MAX_ENTRIES + 1} entries" in failure.error_message
    assert await harness.store.list_segments(task.id) == []
    assert set(origin.requests) == {"many/index.m3u8"}


def test_a_playlist_at_the_entry_limit_passes_the_check() -> None:
    # The limit bounds, it does not forbid: exactly MAX_ENTRIES entries still reach the parser.
    body = "#EXTINF:1,\ns.ts\n" * MAX_ENTRIES
    assert hls_playlist.decode(f"#EXTM3U\n{body}".encode()).count("#EXTINF") == MAX_ENTRIES
    with pytest.raises(FetchError) as caught:
        hls_playlist.decode(f"#EXTM3U\n{body}#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n".encode())
    assert caught.value.error_type is ErrorType.TOO_LARGE


@pytest.mark.parametrize("depth", [1, 3])
async def test_recursive_master_playlists_are_refused_after_one_level(harness: Harness, depth: int) -> None:
    origin = harness.origin
    for level in range(depth):
        target = "m0.m3u8" if level == depth - 1 else f"m{level + 1}.m3u8"  # the last one points back to the first
        origin.write(f"loop/m{level}.m3u8", f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n{target}\n".encode())
    task = await harness.create("loop/m0.m3u8")
    done = await harness.run(task)

    assert done.status is TaskStatus.FAILED
    [failure] = await failures_of(harness, task.id)
    assert (failure.segment_index, failure.error_type) == (-1, "playlist_error")
    assert "master playlist where a media playlist was expected" in failure.error_message
    assert sum(origin.requests.values()) == 2  # the master and one variant: never a third hop
    assert not harness.storage.hls_dir(task.id).exists()


@pytest.mark.parametrize(("size", "error_type"), [(17, "bad_key"), (15, "bad_key"), (10_000, "too_large")])
async def test_a_key_of_the_wrong_size_fails_every_segment_without_fetching_them(
    harness: Harness, size: int, error_type: str
) -> None:
    origin = harness.origin
    origin.write("hls_aes128/key.bin", b"k" * size)
    task = await harness.create("hls_aes128/index.m3u8")
    done = await harness.run(task)

    assert done.status is TaskStatus.FAILED
    failures = await failures_of(harness, task.id)
    assert [(f.segment_index, f.error_type) for f in failures] == [(i, error_type) for i in range(6)]
    assert origin.requests["hls_aes128/key.bin"] == 1  # one dead key costs one fetch, not one per segment
    assert not any(path.startswith("hls_aes128/seg") for path in origin.requests)
    segments = await harness.store.list_segments(task.id)
    assert all(s.status is SegmentStatus.FAILED for s in segments)
    assert harness.segment_files(task) == []


class TrustOriginHost(PolicyGuard):
    """The real policy, except that the local origin's address may be dialled: it plays the public CDN."""

    def address_allowed(self, address: str) -> bool:
        return address == "127.0.0.1" or super().address_allowed(address)


@pytest.fixture
async def guarded(origin: Origin, tmp_path: Path) -> AsyncIterator[Harness]:
    """The engine with private networks refused; cdn.test is public to the policy and is the local origin."""
    engine = Harness(origin, Storage(tmp_path / "storage"), replace(ENGINE, allow_private_networks=False))
    await engine.scheduler.close()
    resolve = static_resolve({"cdn.test": [PUBLIC]})
    engine.scheduler = create_scheduler(
        engine.store,
        replace(ENGINE, allow_private_networks=False, storage_dir=engine.storage.root),
        resolver=StaticResolver({"cdn.test": ["127.0.0.1"]}),
        guard=TrustOriginHost(allow_private=False, resolve=resolve),
        leases=MemoryLeases(engine.store),
    )
    engine.broker = engine.scheduler.broker
    yield engine
    await engine.scheduler.close()


@pytest.mark.parametrize("how", ["redirect", "direct", "decimal"])
async def test_a_key_pointing_at_loopback_is_refused_by_the_policy(guarded: Harness, how: str) -> None:
    origin = guarded.origin
    port = origin.port
    loopback = {
        "redirect": f"http://cdn.test:{port}/keys/k.bin",  # a public hop that redirects to loopback
        "direct": f"http://localhost:{port}/hls_aes128/key.bin",
        "decimal": f"http://2130706433:{port}/hls_aes128/key.bin",  # 127.0.0.1 spelled as one number
    }[how]
    origin.redirect("keys/k.bin", f"http://127.0.0.1:{port}/hls_aes128/key.bin")
    text = (origin.root / "hls_aes128/index.m3u8").read_text().replace('URI="key.bin"', f'URI="{loopback}"')
    origin.write("hls_aes128/evil.m3u8", text.encode())
    task = await guarded.create("", url=f"http://cdn.test:{port}/hls_aes128/evil.m3u8")
    done = await guarded.run(task)

    assert done.status is TaskStatus.FAILED
    failures = await failures_of(guarded, task.id)
    assert [(f.segment_index, f.error_type) for f in failures] == [(i, "url_refused") for i in range(6)]
    assert origin.requests["hls_aes128/key.bin"] == 0  # the loopback target never contacted
    assert origin.requests["keys/k.bin"] == (1 if how == "redirect" else 0)
    assert origin.requests["hls_aes128/evil.m3u8"] == 1  # the public playlist itself was fetched
