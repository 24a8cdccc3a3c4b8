"""Graceful shutdown: calls in flight finish within the grace period; new calls are refused; it is logged."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from mediadl_common.interceptors import ErrorBoundaryInterceptor
from mediadl_common.server import start_server
from tests.common import probe


async def test_in_flight_call_finishes_within_grace(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    probe.release_slow, probe.slow_started = asyncio.Event(), asyncio.Event()
    running = await start_server("127.0.0.1:0", probe.register, [ErrorBoundaryInterceptor()])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        call = channel.unary_unary(f"/{probe.SERVICE}/Slow")(b"")
        await asyncio.wait_for(probe.slow_started.wait(), timeout=10)
        assert running.request_log.in_flight == 1
        stopping = asyncio.create_task(running.stop(grace=10))
        await asyncio.sleep(0.2)
        assert not stopping.done(), "stop() waits for the call in flight"
        probe.release_slow.set()
        assert await call == b"finished"
        await asyncio.wait_for(stopping, timeout=10)
    assert any("1 call(s) in flight, grace 10.0s" in r.getMessage() for r in caplog.records)


async def test_grace_period_bounds_the_wait() -> None:
    # Release is never set: the call outlives the grace period.
    probe.release_slow, probe.slow_started = asyncio.Event(), asyncio.Event()
    running = await start_server("127.0.0.1:0", probe.register, [ErrorBoundaryInterceptor()])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        call = channel.unary_unary(f"/{probe.SERVICE}/Slow")(b"")
        await asyncio.wait_for(probe.slow_started.wait(), timeout=10)
        assert running.request_log.in_flight == 1
        await asyncio.wait_for(running.stop(grace=0.3), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
