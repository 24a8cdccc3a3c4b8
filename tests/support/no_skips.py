"""Under CI=true a skipped test is a failed one, unless ALLOWED names it and says why it may skip."""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

# Node id (or a prefix of one) -> why that test may skip even under CI. Keep it short: every entry is a
# behaviour CI does not prove.
ALLOWED: dict[str, str] = {
    "tests/bench/test_bench_smoke.py::test_ytdlp_baseline_writes_the_stream_in_order": (
        "yt-dlp is an optional baseline of bench/hls_throughput, not a project dependency"
    ),
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def allowed(nodeid: str) -> bool:
    return any(nodeid == entry or nodeid.startswith(entry + "[") for entry in ALLOWED)


def _fail_instead(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail") or allowed(report.nodeid) or not in_ci():
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under CI=true: {reason}\n"
        "CI must prove this test; install what it needs, or add it to ALLOWED in tests/support/no_skips.py "
        "with the reason it may skip."
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    report = yield
    assert isinstance(report, pytest.TestReport)
    _fail_instead(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, object, object]:
    report = yield
    assert isinstance(report, pytest.CollectReport)
    _fail_instead(report)
    return report
