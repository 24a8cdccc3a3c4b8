"""Run the CLI on a pseudo-terminal, as in a real terminal session, and wait for what it draws."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import signal
import struct
import sys
import termios
from collections.abc import Callable
from pathlib import Path

from tests.clients.cli_runner import ROOT, cli_env


class PtySession:
    """A `python -m clients.cli ...` process whose stdin, stdout and stderr are one pty (120x40)."""

    def __init__(self, process: asyncio.subprocess.Process, master: int) -> None:
        self.process = process
        self.master = master
        self.output = b""
        self._arrived = asyncio.Event()
        self._closed = False
        asyncio.get_running_loop().add_reader(master, self._on_readable)

    @classmethod
    async def spawn(cls, home: Path, *args: str) -> PtySession:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**cli_env(home), "TERM": "xterm-256color", "PYTHONIOENCODING": "utf-8"}
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "clients.cli", *args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT
            )
        finally:
            os.close(slave)
        return cls(process, master)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the process closed its end
            data = b""
        if not data:
            self._stop_reading()
        else:
            self.output += data
        self._arrived.set()

    def _stop_reading(self) -> None:
        if not self._closed:
            self._closed = True
            asyncio.get_running_loop().remove_reader(self.master)

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")

    async def wait_for(self, predicate: Callable[[str], bool], within: float = 30) -> None:
        """Until the output so far satisfies `predicate` (woken by each read, no polling)."""

        async def condition() -> None:
            # No await between the check and clear(): a read cannot slip in unnoticed.
            while not (predicate(self.text) or self._closed):
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(condition(), within)
        if not predicate(self.text):
            raise AssertionError(f"the process ended without the expected output:\n{self.text!r}")

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    async def exit_code(self, within: float = 30) -> int:
        code = await asyncio.wait_for(self.process.wait(), within)
        # Drain what the process wrote before it exited.
        with contextlib.suppress(TimeoutError, AssertionError):
            await self.wait_for(lambda _text: self._closed, within=5)
        return code

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._stop_reading()
        os.close(self.master)
