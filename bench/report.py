"""What every bench prints: medians with their spread, the machine it ran on, and markdown table rows."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

MiB = 1024 * 1024


@dataclass(frozen=True)
class Spread:
    """Median of repeated measurements, with the smallest and largest (the spread is part of the result)."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no measurements")
        return cls(tuple(values))

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def show(self, unit: str = "", digits: int = 2) -> str:
        low, high = min(self.values), max(self.values)
        if len(self.values) == 1:
            return f"{self.median:.{digits}f}{unit}"
        return f"{self.median:.{digits}f}{unit} ({low:.{digits}f}-{high:.{digits}f}, n={len(self.values)})"


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    what: str
    measured: str
    target: str = ""
    met: bool | None = None  # None: no target

    def markdown(self) -> str:
        verdict = "" if self.met is None else ("yes" if self.met else "**no**")
        return f"| {self.what} | {self.measured} | {self.target} | {verdict} |"


TABLE_HEAD = "| measurement | median (min-max, n) | target | met |\n| --- | --- | --- | --- |"


def table(rows: Sequence[Row]) -> str:
    return "\n".join([TABLE_HEAD, *(row.markdown() for row in rows)])


def machine(workdir: Path) -> list[str]:
    """Facts that decide the numbers: cores, memory, CPU, kernel, Python and library versions, disk, commit."""
    return [
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores (nproc {len(os.sched_getaffinity(0))})",
        f"- memory: {_mem_total_mib():.0f} MiB; kernel {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); "
        + ", ".join(f"{name} {_version(name)}" for name in ("aiohttp", "grpcio", "SQLAlchemy", "yt-dlp")),
        f"- work directory {workdir} on {_filesystem(workdir)}",
        f"- commit {_commit()}",
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mem_total_mib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _filesystem(path: Path) -> str:
    """The mount holding `path` (longest matching mount point in /proc/mounts), e.g. 'ext4 /dev/vda'."""
    best = ("", "unknown", "")
    try:
        target = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            device, point, kind = line.split()[:3]
            if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) > len(best[0]):
                best = (point, kind, device)
    except OSError:
        pass
    return f"{best[1]} ({best[2]} mounted on {best[0]})" if best[0] else "an unknown file system"


def _commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "download_server", "mediadl_common", "bench"],
            cwd=root,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown (no git)"
    return head.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of a process from /proc/<pid>/status (VmRSS now, VmHWM the peak), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, same user); False when the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
