"""The benchmarks still run: each with --quick (a tiny version), all three at once, ending with its table.

Figures are not checked here (they depend on the machine); bench/ prints them with their targets. What is
checked: a verdict counts only calls and streams that did what they should (errors, unfinished streams, a
download that did not complete, wrong replies and an interceptor that lets anything through all say "NOT met").
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench import fanout, login_storm, unary_stack
from bench.report import Row
from bench.target import free_port
from tests.conftest import ROOT

BENCHMARKS = ("bench.unary_stack", "bench.login_storm", "bench.fanout")


def test_every_benchmark_runs_quick_and_prints_its_table() -> None:
    started = {
        name: subprocess.Popen(
            [sys.executable, "-m", name, "--quick"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in BENCHMARKS
    }
    deadline = time.monotonic() + 150
    outputs = {}
    try:
        for name, proc in started.items():
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outputs[name] = (proc.returncode, out)
    finally:
        for proc in started.values():
            if proc.poll() is None:
                proc.kill()
    for name, (code, out) in outputs.items():
        assert code == 0, f"{name} exited {code}:\n{out[-3000:]}"
        assert "Traceback" not in out, f"{name}:\n{out[-3000:]}"
        table = [line for line in out.splitlines() if line.startswith("|")]
        assert len(table) >= 3 and table[1].startswith("| ---"), f"{name} printed no table:\n{out[-3000:]}"
        assert "(target" in out, f"{name} printed no verdict:\n{out[-3000:]}"
        # Figures depend on the machine; whether every call and stream did what it should does not.
        assert "check failed" not in out and "failed or wrong call" not in out, f"{name}:\n{out[-3000:]}"


def test_each_benchmark_offers_summary_rows_for_run_all() -> None:
    # bench/run_all.py (make bench) takes (say, quick=...) -> [Row]; a tiny run of one proves the shape.
    said: list[str] = []
    rows = login_storm.bench_rows(said.append, quick=True)
    assert rows and all(isinstance(row, Row) and row.target for row in rows)
    assert any(line.startswith("|") for line in said)


def fan_run(**changes: Any) -> fanout.Run:
    run = fanout.Run(
        streams=20, delays_ms=[5.0] * 200, ended=20, errors=[], rss_before=100 * fanout.MiB,
        rss_peak=104 * fanout.MiB, seconds=2.0, server_cpu_seconds=0.2,
        final_status="TASK_STATUS_COMPLETED", segments=(80, 80),
    )  # fmt: skip
    return replace(run, **changes)


@pytest.mark.parametrize(
    "broken",
    [
        {"errors": ["UNAVAILABLE: connection reset"]},
        {"ended": 19},
        {"final_status": "TASK_STATUS_FAILED"},
        {"segments": (79, 80)},
        {"delays_ms": []},
    ],
)
def test_fanout_verdict_counts_errors_unfinished_streams_and_the_download(broken: dict[str, Any]) -> None:
    good = [fan_run(streams=1, ended=1), fan_run()]
    assert [row.met for row in fanout.summary_rows(good)] == [True, True]
    assert "check failed" not in fanout.report(good)

    for runs in ([good[0], fan_run(**broken)], [fan_run(**{"streams": 1, "ended": 1, **broken}), good[1]]):
        assert [row.met for row in fanout.summary_rows(runs)] == [False, False]
        assert "NOT met: the run failed its checks" in fanout.report(runs)
        assert "- check failed: " in fanout.report(runs)


def load(errors: int = 0, calls: int = 100) -> unary_stack.Load:
    return unary_stack.Load(calls, errors, 1.0, [1.0] * calls)


def test_unary_verdict_counts_failed_calls_and_wrong_replies() -> None:
    results = {"noop": [load()], "noop+auth": [load()], "GetTask": [load()]}
    assert [row.met for row in unary_stack.summary_rows(results, [1])] == [True, True]
    for name, met in (("noop", [False, False]), ("noop+auth", [False, True]), ("GetTask", [True, False])):
        failing = {**results, name: [load(errors=3)]}
        assert [row.met for row in unary_stack.summary_rows(failing, [1])] == met, name
        assert "NOT met: 3 failed or wrong call(s)" in unary_stack.report(failing, [1])

    replies = [b"right"] * 7 + [b"wrong"] * 3
    got = unary_stack.checked(replace(load(calls=10), replies=replies), lambda reply: reply == b"right")
    assert (got.calls, got.errors, got.replies) == (7, 3, [])


@pytest.mark.parametrize("with_auth", [True, False])
async def test_the_auth_cost_is_measured_only_behind_an_interceptor_that_checks_tokens(
    with_auth: bool, tmp_path: Path
) -> None:
    secret = "bench-secret-" + "x" * 40
    port = free_port()
    good = (("authorization", f"Bearer {unary_stack.token_for(secret, str(uuid.uuid4()))}"),)
    with unary_stack.probe_process(port, secret, tmp_path / "probe.log", with_auth=with_auth):
        async with unary_stack.channel_to(port) as channel:
            noop = channel.unary_unary(unary_stack.NOOP)
            if with_auth:
                await unary_stack.refuses_bad_tokens(noop, good)
            else:  # as if the interceptor stopped checking: the benchmark refuses to time it
                with pytest.raises(RuntimeError, match="let a call through"):
                    await unary_stack.refuses_bad_tokens(noop, good)
