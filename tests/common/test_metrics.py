"""The /metrics endpoint, scraped over HTTP after real calls."""

from __future__ import annotations

import aiohttp
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mediadl_common.interceptors import ErrorBoundaryInterceptor
from mediadl_common.server import start_server
from tests.common import probe
from tests.support.net import free_port


async def test_rpc_counts_latency_and_streams_are_scraped() -> None:
    metrics_addr = f"127.0.0.1:{free_port()}"
    running = await start_server("127.0.0.1:0", probe.register, [ErrorBoundaryInterceptor()], metrics_addr=metrics_addr)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            for _ in range(3):
                await channel.unary_unary(f"/{probe.SERVICE}/Ok")(b"")
            with pytest.raises(grpc.aio.AioRpcError):
                await channel.unary_unary(f"/{probe.SERVICE}/NotFound")(b"")
            assert len([m async for m in channel.unary_stream(f"/{probe.SERVICE}/Stream")(b"2")]) == 2
        async with aiohttp.ClientSession() as session, session.get(f"http://{metrics_addr}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    finally:
        await running.stop(0)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    ok = f"/{probe.SERVICE}/Ok"
    assert samples[("mediadl_rpc_requests_total", (("code", "OK"), ("method", ok)))] == 3
    assert (
        samples[("mediadl_rpc_requests_total", (("code", "NOT_FOUND"), ("method", f"/{probe.SERVICE}/NotFound")))] == 1
    )
    assert samples[("mediadl_rpc_duration_seconds_count", (("method", ok),))] == 3
    # The stream has ended, so no stream is open any more.
    assert samples[("mediadl_rpc_active_streams", (("method", f"/{probe.SERVICE}/Stream"),))] == 0
