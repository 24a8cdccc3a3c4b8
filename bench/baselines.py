"""The baselines the whole path is measured against: a bare aiohttp loop and yt-dlp's native HLS downloader."""

from __future__ import annotations

import asyncio
import importlib.util
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import aiohttp


async def bare_aiohttp(playlist_url: str, out_dir: Path, concurrency: int) -> float:
    """Seconds for the simplest sound loop: one session, `concurrency` workers, each segment read and written.

    No retries, no state, no progress: the floor our bookkeeping is measured against. Files are written
    on the event loop, as such a loop would: the fastest simple way, so the hardest baseline to match.
    """
    out_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - see above
    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        async with session.get(playlist_url) as resp:
            resp.raise_for_status()
            text = await resp.text()
        urls = [urljoin(playlist_url, line) for line in text.splitlines() if line and not line.startswith("#")]
        queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        for item in enumerate(urls):
            queue.put_nowait(item)

        async def worker() -> None:
            while not queue.empty():
                index, url = queue.get_nowait()
                async with session.get(url) as resp:
                    resp.raise_for_status()
                    data = await resp.read()
                (out_dir / f"{index}.ts").write_bytes(data)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def ytdlp_command() -> list[str] | None:
    """How to run yt-dlp here (the venv's module first, then PATH), or None when it is not installed."""
    if importlib.util.find_spec("yt_dlp") is not None:
        return [sys.executable, "-m", "yt_dlp"]
    found = shutil.which("yt-dlp")
    return [found] if found else None


def ytdlp_version(command: list[str]) -> str:
    done = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


def ytdlp_startup(command: list[str]) -> float:
    """Seconds yt-dlp needs to start and exit doing nothing (reported apart; it is in every yt-dlp time)."""
    started = time.perf_counter()
    subprocess.run([*command, "--ignore-config", "--version"], capture_output=True, check=True, timeout=60)
    return time.perf_counter() - started


def ytdlp(command: list[str], playlist_url: str, out_dir: Path, concurrency: int) -> tuple[float, float]:
    """(wall, CPU) seconds of `yt-dlp --concurrent-fragments N` with its native HLS downloader, start to exit."""
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        *command,
        "--ignore-config",
        "--no-cache-dir",
        "--quiet",
        "--no-progress",
        # Measure the downloader, not a remux afterwards (the synthetic segments are not real MPEG-TS).
        "--fixup",
        "never",
        "--downloader",
        "m3u8:native",
        "--concurrent-fragments",
        str(concurrency),
        "--paths",
        str(out_dir),
        "--output",
        "video.%(ext)s",
        playlist_url,
    ]
    started, cpu_before = time.perf_counter(), _children_cpu()
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    elapsed, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    if done.returncode != 0:
        raise RuntimeError(f"yt-dlp failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return elapsed, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for child, yt-dlp's threads included
    return usage.ru_utime + usage.ru_stime
