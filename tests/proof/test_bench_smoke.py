"""The benchmarks still run: each with --quick (a tiny version), all three at once, ending with its table.

Figures are not checked here (they depend on the machine); bench/ prints them with their targets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench import login_storm
from bench.report import Row
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


def test_each_benchmark_offers_summary_rows_for_run_all() -> None:
    # bench/run_all.py (make bench) takes (say, quick=...) -> [Row]; a tiny run of one proves the shape.
    said: list[str] = []
    rows = login_storm.bench_rows(said.append, quick=True)
    assert rows and all(isinstance(row, Row) and row.target for row in rows)
    assert any(line.startswith("|") for line in said)
