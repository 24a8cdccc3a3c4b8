"""Generated HLS playlists (hypothesis over tags and values) never wedge the engine (issue 15, finding 1).

Every generated playlist, served by the local origin to a real download server, ends its task in a terminal
state within a bounded time: never left PROCESSING, never INTERNAL; meanwhile another user's GetTask is
answered throughout (every call must succeed; the worst latency is printed). `make test` runs 200 examples,
`make test-slow` (marker `slow`) 500.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
import pytest

from mediadl.download.v1 import download_pb2 as pb
from tests.download.api import DownloadApi, download_settings, running_download_server
from tests.download.engine_api.flows import fast_engine
from tests.proof.test_fuzz_rpcs import LoopThread
from tests.support.origin import Origin

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pytest.skip("hypothesis is not installed", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
OWNER, OTHER = "gen-owner-0015", "gen-other-0015"
TERMINAL = {pb.TASK_STATUS_COMPLETED, pb.TASK_STATUS_PARTIAL_COMPLETED, pb.TASK_STATUS_FAILED}
RUN_BOUND = 60.0  # seconds one generated task may take before the test calls it wedged

# Values as an origin might send them: sane, hostile, or not numbers at all.
NUMBER = st.one_of(
    st.integers(min_value=-5, max_value=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["inf", "-inf", "nan", "1e309", "", "abc", "0x10", "4.", " 3"]),
).map(str)
URI = st.sampled_from(["seg00.ts", "seg01.ts", "missing.ts", "../hls_ts/seg02.ts", "seg03.ts?x=1", "key.bin", ""])
IV = st.one_of(st.just(""), st.text("0123456789abcdefABCDEF", max_size=40).map(lambda h: f",IV=0x{h}"))
TAG = st.one_of(
    st.tuples(st.just("#EXTINF:"), NUMBER, st.just(","), URI).map(lambda t: f"{t[0]}{t[1]}{t[2]}\n{t[3]}"),
    NUMBER.map(lambda n: f"#EXT-X-TARGETDURATION:{n}"),
    NUMBER.map(lambda n: f"#EXT-X-MEDIA-SEQUENCE:{n}"),
    NUMBER.map(lambda n: f"#EXT-X-DISCONTINUITY-SEQUENCE:{n}"),
    st.tuples(NUMBER, NUMBER).map(lambda t: f"#EXT-X-BYTERANGE:{t[0]}@{t[1]}"),
    NUMBER.map(lambda n: f"#EXT-X-BYTERANGE:{n}"),
    st.tuples(st.sampled_from(["AES-128", "NONE", "SAMPLE-AES", "AES-256", ""]), URI, IV).map(
        lambda t: f'#EXT-X-KEY:METHOD={t[0]},URI="{t[1]}"{t[2]}'
    ),
    st.tuples(URI, NUMBER).map(lambda t: f'#EXT-X-MAP:URI="{t[0]}",BYTERANGE="{t[1]}"'),
    st.sampled_from(["#EXT-X-DISCONTINUITY", "#EXT-X-ENDLIST", "#EXT-X-VERSION:3", "#EXT-X-PLAYLIST-TYPE:VOD"]),
    NUMBER.map(lambda n: f"#EXT-X-STREAM-INF:BANDWIDTH={n}\nseg00.ts"),
    st.text(max_size=30).map(lambda s: s.replace("\x00", "")),
)
PLAYLIST = st.tuples(
    st.sampled_from(["#EXTM3U", "#EXTM3U", "#EXTM3U", "", "#EXTM3U8"]),
    st.lists(TAG, max_size=12),
    st.sampled_from(["#EXT-X-ENDLIST", "#EXT-X-ENDLIST", "#EXT-X-ENDLIST", ""]),
).map(lambda t: "\n".join([t[0], *t[1], t[2]]) + "\n")


@dataclass
class Stack:
    loop: LoopThread
    api: DownloadApi
    origin: Origin
    other_task: str
    names: Iterator[int] = field(default_factory=itertools.count)
    worst_get: float = 0.0
    runs: int = 0

    def __repr__(self) -> str:  # hypothesis prints the test's arguments: keep them short
        return "Stack()"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, media_fixtures: Path) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("generated")
    loop = LoopThread()
    exits = AsyncExitStack()

    async def start() -> Stack:
        origin = await exits.enter_async_context(Origin.serving(media_fixtures, folder))
        settings = download_settings(
            f"sqlite:///{folder / 'download.db'}", folder / "storage", DOWNLOAD_ALLOW_PRIVATE_NETWORKS="true"
        )
        engine = replace(fast_engine(settings), sweep_seconds=0.5, live_max_idle_polls=3)
        api = await exits.enter_async_context(running_download_server(settings, engine=engine))
        other = await api.create_task(OTHER)
        return Stack(loop, api, origin, other.id)

    built = loop.run(start())
    yield built
    print(f"\ngenerated playlists: {built.runs} runs, worst GetTask latency meanwhile {built.worst_get * 1000:.0f} ms")
    loop.run(exits.aclose())
    loop.close()


async def _one(stack: Stack, text: str) -> tuple[int, str]:
    """Serve `text`, download it, and keep asking GetTask for another user's task meanwhile."""
    path = f"hls_ts/generated-{next(stack.names)}.m3u8"
    stack.origin.write(path, text.encode("utf-8", "surrogatepass"))
    api = stack.api
    task = await api.create_task(OWNER, resource_url=stack.origin.url(path))
    done = asyncio.Event()

    async def other_user() -> None:
        request = pb.GetTaskRequest(task_id=stack.other_task)
        while not done.is_set():
            began = time.perf_counter()
            await api.stub.GetTask(request, metadata=api.auth(OTHER))  # raises (fails the test) on any error
            stack.worst_get = max(stack.worst_get, time.perf_counter() - began)
            await asyncio.sleep(0.01)

    async with asyncio.TaskGroup() as group:
        group.create_task(other_user())
        try:
            async with asyncio.timeout(RUN_BOUND):
                last = None
                async for response in api.stub.StartTask(
                    pb.StartTaskRequest(task_id=task.id), metadata=api.auth(OWNER)
                ):
                    last = response.event
        finally:
            done.set()
    stored = (await api.stub.GetTask(pb.GetTaskRequest(task_id=task.id), metadata=api.auth(OWNER))).task
    stack.runs += 1
    assert last is not None and last.status == stored.status
    return stored.status, stored.last_error


def _check(stack: Stack, text: str) -> None:
    try:
        status, last_error = stack.loop.run(_one(stack, text), timeout=RUN_BOUND + 30)
    except grpc.aio.AioRpcError as exc:
        raise AssertionError(f"{exc.code()}: {exc.details()}") from None
    assert status in TERMINAL, (pb.TaskStatus.Name(status), last_error)  # type: ignore[arg-type]
    assert "internal error" not in last_error, last_error


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(text=PLAYLIST)
def test_generated_playlists_always_end(stack: Stack, text: str) -> None:
    _check(stack, text)


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=PLAYLIST)
def test_generated_playlists_always_end_slow(stack: Stack, text: str) -> None:
    _check(stack, text)
