"""bench/ranged.py end to end on a small file: nginx (or the fallback origin), the server, aria2c, bytes checked."""

from __future__ import annotations

from pathlib import Path

from bench import ranged
from bench.memory import PEAK_TARGET_MIB


def test_ranged_bench_runs_on_32_mib(tmp_path: Path) -> None:
    options = ranged.RangedOptions(size_mib=32, connections=(4,), limits=(None, "20m"), workdir=tmp_path)
    lines: list[str] = []
    result = ranged.measure(options, lines.append)  # raises if either side wrote a wrong byte

    limited = [case for case in result.cases if case.limit == "20m"]
    nginx_missing = any("nginx unavailable" in note for note in result.notes)
    assert len(limited) == (0 if nginx_missing else 1)  # the aiohttp fallback cannot cap a connection
    for case in result.cases:
        assert case.connections == 4 and len(case.ours) == len(case.peak_mib) == 1
        assert case.ours[0] > 0 and case.ours_cpu[0] >= 0
        assert len(case.aria) == (0 if any("aria2c" in note for note in result.notes) else 1)
    rows = {row.what: row for row in result.rows()}
    peak = next(row for what, row in rows.items() if what.endswith("no rate limit: server peak RSS"))
    assert peak.met is (result.cases[0].peak_mib[0] < PEAK_TARGET_MIB)
    for case in result.cases:
        if case.aria:
            ratio_row = next(
                row for what, row in rows.items() if what.endswith("ours / aria2c time") and case.label(32) in what
            )
            assert ratio_row.met is (case.ours[0] / case.aria[0] <= ranged.RATIO_TARGET)
    assert sum("round 1" in line for line in lines) == len(result.cases)
    assert [path.name for path in tmp_path.iterdir()] == []  # the work directory is removed
