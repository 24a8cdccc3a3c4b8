"""What the memory benchmarks share (mp4_memory, ranged, s3, recording): the synthetic MP4 they download, a
download server warmed up with its idle RSS, and the server's peak RSS over one step, measured one way.

The peak is the larger of VmHWM, reset before the step through /proc/<pid>/clear_refs (Linux >= 4.0), and
VmRSS sampled at 50 Hz in a thread (the kernel updates VmHWM lazily, at unmaps). Where the reset is refused,
the samples alone give the peak (they may miss a spike shorter than 20 ms). psutil is not needed: /proc
says it all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.report import cpu_seconds, reset_peak_rss, rss_mib
from bench.synthetic import MiB, Mp4Layout, Pool
from bench.target import DownloadServer

T = TypeVar("T")
PEAK_TARGET_MIB = 150.0  # issue 22 and the MP4 memory bound: the server's peak RSS during a 1 GiB MP4
MP4_DURATION = 3600  # seconds, as the synthetic mvhd says (wrong_download checks it)
EXACT = "VmHWM reset before, and 50 Hz VmRSS samples"
SAMPLED = "VmRSS sampled at 50 Hz"


def mp4_layout(size: int) -> Mp4Layout:
    """The synthetic MP4 of `size` bytes every memory bench downloads (bench/origin.py serves `mp4/<size>.mp4`)."""
    return Mp4Layout(size, Pool(MiB).pattern(), duration=MP4_DURATION)


class PeakSampler:
    """Reads VmRSS every 20 ms in a thread until stopped; keeps the largest value."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mib(self._pid))
            if self._stop.wait(0.02):
                return


@dataclass(frozen=True)
class Peak:
    """One step measured: what it returned, the process's peak RSS and CPU seconds during it."""

    mib: float
    sampled_mib: float  # the samples' maximum alone
    cpu_seconds: float
    source: str  # EXACT or SAMPLED


def peak_during(pid: int, step: Callable[[], T]) -> tuple[T, Peak]:
    """Run `step` (in this process) and measure process `pid` meanwhile."""
    exact = reset_peak_rss(pid)
    cpu_before = cpu_seconds(pid)
    with PeakSampler(pid) as sampler:
        result = step()
    cpu = cpu_seconds(pid) - cpu_before
    peak = max(rss_mib(pid, "VmHWM"), sampler.peak) if exact else sampler.peak
    return result, Peak(peak, sampler.peak, cpu, EXACT if exact else SAMPLED)


@contextmanager
def warm_server(workdir: Path, env: dict[str, str] | None = None) -> Iterator[tuple[DownloadServer, float]]:
    """A download server in its own process, after one authenticated unary call (the stack loaded), with its
    idle VmRSS in MiB."""
    with DownloadServer(workdir, env=env) as server:
        server.warm_up()
        yield server, rss_mib(server.pid)
