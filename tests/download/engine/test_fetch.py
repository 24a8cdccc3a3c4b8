"""The fetcher against a real local origin: retries and their limits, bounds, redirects, Range, the URL policy."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.files.sinks import FileSink
from download_server.engine.http.fetch import Fetcher
from download_server.engine.http.fetch_settings import FetchSettings
from download_server.engine.http.guard import PolicyGuard
from tests.download.engine.conftest import FAST
from tests.support.dns import StaticResolver, static_resolve
from tests.support.origin import Origin

SEG = "hls_ts/seg00.ts"
MP4 = "mp4/clip.mp4"
PUBLIC = "93.184.216.34"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RecordingSleep:
    """Stands in for asyncio.sleep so backoff is observed, not waited for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def test_small_body_is_fetched_whole(origin: Origin, fetcher: Fetcher) -> None:
    got = await fetcher.fetch_bytes(origin.url("hls_ts/index.m3u8"), max_bytes=4096)
    assert got.body == (origin.root / "hls_ts/index.m3u8").read_bytes()
    assert (got.status, got.attempts, got.size) == (200, 1, len(got.body))


@pytest.mark.parametrize("fault", ["503", "reset", "truncate", "stall", "408", "429"])
async def test_transient_faults_are_retried_until_the_bytes_arrive(origin: Origin, fault: str) -> None:
    if fault in ("503", "408", "429"):
        origin.fail(SEG, status=int(fault), times=2)
    elif fault == "reset":
        origin.reset(SEG, times=4)  # aiohttp itself retries a reset once per attempt: two of ours fail
    elif fault == "truncate":
        origin.truncate(SEG, times=2)
    else:
        origin.stall(SEG, delay=1.0, times=1)
    sleep = RecordingSleep()
    fetcher = Fetcher(
        FetchSettings(read_timeout=0.3, backoff_base=0.1, backoff_max=10, max_attempts=5),
        PolicyGuard(allow_private=True),
        sleep=sleep,
    )
    try:
        got = await fetcher.fetch_bytes(origin.url(SEG), max_bytes=1 << 20)
    finally:
        await fetcher.close()
    assert got.body == (origin.root / SEG).read_bytes()
    expected_attempts = 2 if fault == "stall" else 3
    assert got.attempts == expected_attempts
    # Exponential steps with jitter: attempt n waits within [base*2^(n-1)/2, base*2^(n-1)].
    assert len(sleep.delays) == expected_attempts - 1
    for n, delay in enumerate(sleep.delays, start=1):
        assert 0.1 * 2 ** (n - 1) / 2 <= delay <= 0.1 * 2 ** (n - 1)


async def test_retry_after_is_honoured_and_capped(origin: Origin) -> None:
    origin.fail(SEG, status=503, times=1, retry_after="3")
    origin.fail(SEG, status=429, times=1, retry_after="3600")
    sleep = RecordingSleep()
    fetcher = Fetcher(
        FetchSettings(backoff_base=0.01, retry_after_max=20), PolicyGuard(allow_private=True), sleep=sleep
    )
    try:
        await fetcher.fetch_bytes(origin.url(SEG), max_bytes=1 << 20)
    finally:
        await fetcher.close()
    assert sleep.delays == [3.0, 20.0]


@pytest.mark.parametrize("status", [400, 403, 404, 410])
async def test_other_client_errors_are_not_retried(origin: Origin, fetcher: Fetcher, status: int) -> None:
    origin.fail(SEG, status=status)
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch_bytes(origin.url(SEG), max_bytes=1 << 20)
    assert (caught.value.error_type, caught.value.http_status, caught.value.attempts) == (ErrorType.HTTP, status, 1)
    assert origin.requests[SEG] == 1


async def test_giving_up_reports_the_last_error_and_every_attempt(origin: Origin, fetcher: Fetcher) -> None:
    origin.fail(SEG, status=502)
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch_bytes(origin.url(SEG), max_bytes=1 << 20)
    assert (caught.value.error_type, caught.value.http_status) == (ErrorType.HTTP, 502)
    assert caught.value.attempts == FAST.max_attempts == origin.requests[SEG]


async def test_bodies_over_their_bound_are_refused_without_retry(origin: Origin, fetcher: Fetcher) -> None:
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch_bytes(origin.url(SEG), max_bytes=1000)
    assert caught.value.error_type is ErrorType.TOO_LARGE
    assert origin.requests[SEG] == 1


async def test_redirects_are_followed_by_hand_up_to_ten(origin: Origin, fetcher: Fetcher) -> None:
    origin.redirect("a", "/b", status=301)
    origin.redirect("b", "c", status=307)
    origin.redirect("c", origin.url(SEG), status=302)
    got = await fetcher.fetch_bytes(origin.url("a"), max_bytes=1 << 20)
    assert got.final_url == origin.url(SEG)
    assert got.body == (origin.root / SEG).read_bytes()

    origin.redirect("loop", "/loop")
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch_bytes(origin.url("loop"), max_bytes=1 << 20)
    assert caught.value.error_type is ErrorType.TOO_MANY_REDIRECTS
    assert origin.requests["loop"] == 11


async def test_file_download_hashes_and_renames_only_when_complete(
    origin: Origin, fetcher: Fetcher, tmp_path: Path
) -> None:
    final = tmp_path / "out" / "clip.mp4"
    origin.truncate(MP4, times=1)
    sink = FileSink(final)
    got = await fetcher.download(origin.url(MP4), sink)
    manifest = json.loads((origin.root / "manifest.json").read_text())["mp4"]
    assert (got.size, sink.sha256, got.attempts) == (manifest["size"], manifest["sha256"], 2)
    assert sha(final.read_bytes()) == manifest["sha256"]
    assert not sink.temp.exists()


async def test_failed_download_leaves_no_file(origin: Origin, fetcher: Fetcher, tmp_path: Path) -> None:
    origin.truncate(MP4, times=None)
    out = tmp_path / "out"
    out.mkdir()
    sink = FileSink(out / "clip.mp4")
    with pytest.raises(FetchError) as caught:
        await fetcher.download(origin.url(MP4), sink)
    assert caught.value.error_type is ErrorType.TRUNCATED
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("honour_range", [True, False])
async def test_resumable_download_continues_with_range(
    origin: Origin, fetcher: Fetcher, tmp_path: Path, honour_range: bool
) -> None:
    data = (origin.root / MP4).read_bytes()
    final = tmp_path / "clip.mp4"
    sink = FileSink(final, resumable=True)
    sink.temp.write_bytes(data[:30000])
    if not honour_range:
        origin.ignore_range(MP4)
    got = await fetcher.download(origin.url(MP4), sink, expected_total=len(data))
    assert origin.range_headers[MP4] == ["bytes=30000-"]
    assert final.read_bytes() == data and sink.sha256 == sha(data) and got.size == len(data)
    assert got.status == (206 if honour_range else 200)


async def test_resumable_download_keeps_what_arrived_before_a_cut(
    origin: Origin, fetcher: Fetcher, tmp_path: Path
) -> None:
    data = (origin.root / MP4).read_bytes()
    origin.truncate(MP4, times=1)
    sink = FileSink(tmp_path / "clip.mp4", resumable=True)
    await fetcher.download(origin.url(MP4), sink, expected_total=len(data))
    first, second = origin.range_headers[MP4]
    assert first is None and second is not None and second.startswith("bytes=") and second != "bytes=0-"
    assert sink.final.read_bytes() == data


@pytest.mark.parametrize("honour_range", [True, False])
async def test_byte_ranges_come_out_exact(origin: Origin, fetcher: Fetcher, tmp_path: Path, honour_range: bool) -> None:
    data = (origin.root / MP4).read_bytes()
    if not honour_range:
        origin.ignore_range(MP4)
    sink = FileSink(tmp_path / "part.bin")
    await fetcher.download(origin.url(MP4), sink, byterange=(1000, 5000))
    assert sink.final.read_bytes() == data[1000:6000]
    assert origin.range_headers[MP4] == ["bytes=1000-5999"]


# URL policy on every hop (the origin itself is loopback, so these fetchers run with the policy on).


async def test_loopback_is_refused_before_any_connection(origin: Origin) -> None:
    fetcher = Fetcher(FAST, PolicyGuard(allow_private=False))
    try:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch_bytes(origin.url(SEG), max_bytes=1 << 20)
    finally:
        await fetcher.close()
    assert caught.value.error_type is ErrorType.URL_REFUSED and caught.value.attempts == 1
    assert origin.requests[SEG] == 0


async def test_a_host_resolving_to_a_private_address_is_refused(origin: Origin) -> None:
    resolve = static_resolve({"media.test": ["10.1.2.3"]})
    fetcher = Fetcher(FAST, PolicyGuard(allow_private=False, resolve=resolve))
    try:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch_bytes(f"http://media.test:{origin.port}/{SEG}", max_bytes=1 << 20)
    finally:
        await fetcher.close()
    assert caught.value.error_type is ErrorType.URL_REFUSED
    assert "private" in caught.value.message


class TrustOriginHost(PolicyGuard):
    """The real policy, except that the test origin's address may be dialled (it stands for a public CDN)."""

    def address_allowed(self, address: str) -> bool:
        return address == "127.0.0.1" or super().address_allowed(address)


async def test_a_redirect_to_loopback_is_refused(origin: Origin) -> None:
    guard = TrustOriginHost(allow_private=False, resolve=static_resolve({"cdn.test": [PUBLIC]}))
    fetcher = Fetcher(FAST, guard, resolver=StaticResolver({"cdn.test": ["127.0.0.1"]}))
    origin.redirect("hop", origin.url(SEG))
    try:
        ok = await fetcher.fetch_bytes(f"http://cdn.test:{origin.port}/{SEG}", max_bytes=1 << 20)
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch_bytes(f"http://cdn.test:{origin.port}/hop", max_bytes=1 << 20)
    finally:
        await fetcher.close()
    assert ok.body == (origin.root / SEG).read_bytes()  # the first hop really is reachable
    assert caught.value.error_type is ErrorType.URL_REFUSED
    assert (origin.requests["hop"], origin.requests[SEG]) == (1, 1)


async def test_dns_rebinding_cannot_reach_a_private_address(origin: Origin) -> None:
    # The policy check sees a public answer; the connection's own lookup answers loopback.
    guard = PolicyGuard(allow_private=False, resolve=static_resolve({"rebind.test": [PUBLIC]}))
    fetcher = Fetcher(FAST, guard, resolver=StaticResolver({"rebind.test": ["127.0.0.1"]}))
    try:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch_bytes(f"http://rebind.test:{origin.port}/{SEG}", max_bytes=1 << 20)
    finally:
        await fetcher.close()
    assert caught.value.error_type is ErrorType.URL_REFUSED and caught.value.attempts == 1
    assert origin.requests[SEG] == 0


async def test_a_partial_file_of_another_version_is_dropped_and_fetched_whole(
    origin: Origin, fetcher: Fetcher, tmp_path: Path
) -> None:
    data = (origin.root / MP4).read_bytes()
    sink = FileSink(tmp_path / "clip.mp4", resumable=True)
    sink.temp.write_bytes(b"x" * 30000)  # held from a file of another size
    got = await fetcher.download(origin.url(MP4), sink, expected_total=len(data) + 1)
    assert origin.range_headers[MP4] == ["bytes=30000-", None]
    assert sink.final.read_bytes() == data and got.attempts == 2
