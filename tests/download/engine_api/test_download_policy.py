"""The URL policy at download time, through the server: with DOWNLOAD_ALLOW_PRIVATE_NETWORKS=false a redirect
to loopback and a host resolving to a private address become failure records, and nothing is dialled."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from download_server.engine.http.guard import PolicyGuard
from mediadl.download.v1 import download_pb2 as pb
from tests.download.api import download_settings, running_download_server
from tests.download.engine_api.flows import Downloads, fast_engine, seg
from tests.support.dns import StaticResolver, static_resolve
from tests.support.origin import Origin

PUBLIC = "93.184.216.34"
# The policy's answers: cdn.test is public (it stands for a CDN); private.test is not; later.test changes.
ANSWERS = {
    "cdn.test": [PUBLIC],
    "private.test": ["10.1.2.3"],
    "later.test": [PUBLIC],
    "live.example.com": [PUBLIC],  # the tasks' liveroom_url
}


class TrustOriginHost(PolicyGuard):
    """The real policy, except that the local origin's address may be dialled: it plays the public CDN."""

    def address_allowed(self, address: str) -> bool:
        return address == "127.0.0.1" or super().address_allowed(address)


@pytest.fixture
def answers() -> dict[str, list[str]]:
    """What the policy's name lookups answer; a test may change it between creating and starting a task."""
    return {host: list(addresses) for host, addresses in ANSWERS.items()}


@pytest.fixture
async def guarded(
    origin: Origin, tmp_path: Path, make_database_url: Callable[[str], str], answers: dict[str, list[str]]
) -> AsyncIterator[Downloads]:
    resolve = static_resolve(answers)
    settings = download_settings(make_database_url("sqlite"), tmp_path / "storage")  # private networks refused
    async with running_download_server(
        settings,
        engine=fast_engine(settings),
        resolve=resolve,
        resolver=StaticResolver({"cdn.test": ["127.0.0.1"]}),  # where connections to cdn.test really go
        guard=TrustOriginHost(allow_private=False, resolve=resolve),
    ) as api:
        yield Downloads(api, origin)


async def test_a_redirect_to_loopback_and_a_private_host_become_failure_records(guarded: Downloads) -> None:
    origin = guarded.origin
    cdn = f"http://cdn.test:{origin.port}"
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0"]
    for i in range(6):
        uri = f"http://private.test:{origin.port}/hls_ts/seg03.ts" if i == 3 else f"../hls_ts/seg{i:02d}.ts"
        lines += ["#EXTINF:1.0,", uri]
    origin.write("policy/index.m3u8", "\n".join([*lines, "#EXT-X-ENDLIST", ""]).encode())
    origin.redirect(seg(2), f"http://127.0.0.1:{origin.port}/elsewhere/seg02.ts")
    task = await guarded.create("", url=f"{cdn}/policy/index.m3u8")
    events = await guarded.start(task.id)

    assert events[-1].status == pb.TASK_STATUS_PARTIAL_COMPLETED
    failures = await guarded.failures(task.id)
    assert [(f.segment_index, f.error_type) for f in failures] == [(2, "url_refused"), (3, "url_refused")]
    assert failures[1].segment_url == f"http://private.test:{origin.port}/hls_ts/seg03.ts"
    assert "private" in failures[1].error_message
    # The redirect was answered, its loopback target never contacted; the private host never dialled.
    assert (origin.requests[seg(2)], origin.requests["elsewhere/seg02.ts"], origin.requests[seg(3)]) == (1, 0, 0)
    assert [origin.completed[seg(i)] for i in (0, 1, 4, 5)] == [1, 1, 1, 1]


async def test_a_host_that_resolves_private_by_download_time_fails_the_task(
    guarded: Downloads, answers: dict[str, list[str]]
) -> None:
    task = await guarded.create("", url=f"http://later.test:{guarded.origin.port}/hls_ts/index.m3u8")  # public now
    answers["later.test"] = ["192.168.7.7"]
    events = await guarded.start(task.id)

    assert events[-1].status == pb.TASK_STATUS_FAILED
    [failure] = await guarded.failures(task.id)
    assert (failure.segment_index, failure.error_type, failure.http_status) == (-1, "url_refused", 0)
    assert sum(guarded.origin.requests.values()) == 0
