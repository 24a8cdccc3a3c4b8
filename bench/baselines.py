"""The baselines the whole path is measured against: curl -Z (the practical limit), a bare aiohttp loop,
aria2c and yt-dlp's native HLS downloader. Each downloads the same segment URLs to files, and is verified."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
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
        urls = segment_urls(text, playlist_url)
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
    return _timed(args, "yt-dlp")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for child, yt-dlp's threads included
    return usage.ru_utime + usage.ru_stime


def segment_urls(playlist_text: str, playlist_url: str) -> list[str]:
    """The absolute segment URLs of a media playlist, in order (what curl and aria2c are handed)."""
    return [urljoin(playlist_url, line) for line in playlist_text.splitlines() if line and not line.startswith("#")]


def find_tool(name: str, debian_package: str, say: Callable[[str], None]) -> tuple[str | None, str]:
    """The path of a command-line baseline, installing its Debian package when missing and root.

    Returns (path or None, a note for the report: the version, or why the row is skipped).
    """
    found = shutil.which(name)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        say(f"{name} is missing: apt-get install {debian_package}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", debian_package]):
            subprocess.run(step, capture_output=True, env=env, timeout=600, check=False)
        found = shutil.which(name)
    if found is None:
        why = "not installed" + ("" if os.geteuid() == 0 else " (and not root, so not installed by the bench)")
        return None, f"{why}: apt-get install {debian_package}"
    done = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60, check=False)
    return found, (done.stdout.splitlines() or [name])[0].strip()


def curl_parallel(curl: str, urls: Sequence[str], out_dir: Path, concurrency: int) -> tuple[float, float]:
    """(wall, CPU) seconds of `curl -Z --parallel-max N` fetching every URL to `<index>.ts` in out_dir.

    One process, one libcurl multi handle reusing its connections: C with no bookkeeping, the practical
    limit of this machine and origin. The URL/output pairs go through a config file (-K), as 800 of them
    would not fit a sane command line.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    config = out_dir.parent / f"{out_dir.name}.curlrc"
    lines = [f'url = "{url}"\noutput = "{out_dir / f"{index}.ts"}"' for index, url in enumerate(urls)]
    config.write_text("\n".join(lines) + "\n")
    args = [curl, "--silent", "--show-error", "--fail", "-Z", "--parallel-max", str(concurrency), "-K", str(config)]
    try:
        return _timed(args, "curl")
    finally:
        config.unlink()


def aria2c(aria2: str, urls: Sequence[str], out_dir: Path, concurrency: int) -> tuple[float, float]:
    """(wall, CPU) seconds of `aria2c -j N` over the URL list, each segment to `<index>.ts` in out_dir.

    One connection per file (segments are small; splitting them would only add requests) and no
    preallocation, which would write every file twice; otherwise aria2's defaults.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    listing = out_dir.parent / f"{out_dir.name}.aria2-input"
    listing.write_text("".join(f"{url}\n  out={index}.ts\n" for index, url in enumerate(urls)))
    args = [
        aria2,
        "--quiet",
        "--no-conf",
        f"--max-concurrent-downloads={concurrency}",
        "--split=1",
        "--max-connection-per-server=1",
        "--file-allocation=none",
        "--auto-file-renaming=false",
        "--allow-overwrite=true",
        f"--dir={out_dir}",
        f"--input-file={listing}",
    ]
    try:
        return _timed(args, "aria2c")
    finally:
        listing.unlink()


def _timed(args: Sequence[str], who: str) -> tuple[float, float]:
    started, cpu_before = time.perf_counter(), _children_cpu()
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    elapsed, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    if done.returncode != 0:
        raise RuntimeError(f"{who} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return elapsed, cpu
