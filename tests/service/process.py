"""Running ``python -m bot`` as a child process: a clean environment (nothing inherited that the bot
reads), an empty working directory (no stray ``.env``), captured output, and guaranteed clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

#: Upper bound for any single wait on a child process; generous, as it only matters when something hangs.
WAIT = 20.0


def free_port() -> int:
    """A port that was free a moment ago, for a child that must be told its port up front."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports that were all free a moment ago (``dcs-bot emulator
    --clouds 2`` listens on ``port`` and ``port + 1``): a single free port's neighbour is often taken by
    the other servers and client sockets of the tests."""
    for _ in range(100):
        first = free_port()
        probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
        try:
            for offset, probe in enumerate(probes):
                probe.bind(("127.0.0.1", first + offset))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return first
    raise RuntimeError(f"found no {count} consecutive free ports")


def child_env(settings: Mapping[str, str]) -> dict[str, str]:
    """Only what Python needs to run, plus ``settings``."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    return env | {"PYTHONUNBUFFERED": "1"} | dict(settings)


def run_cli(args: list[str], settings: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m bot ARGS`` to completion (bounded), for commands that exit by themselves."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=child_env(settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


@dataclass
class Child:
    """A running ``python -m bot`` whose stdout and stderr are collected line by line."""

    process: asyncio.subprocess.Process
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def start_reading(self) -> None:
        assert self.process.stdout is not None and self.process.stderr is not None
        self.readers = [
            asyncio.create_task(self._read(self.process.stdout, self.stdout)),
            asyncio.create_task(self._read(self.process.stderr, self.stderr)),
        ]

    def signal(self, number: signal.Signals) -> None:
        self.process.send_signal(number)

    async def wait_for_line(self, fragment: str, *, stream: str = "stdout", timeout: float = WAIT) -> str:
        lines = self.stdout if stream == "stdout" else self.stderr
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(
                lambda: any(fragment in line for line in lines) or self.process.returncode is not None
            )
        found = [line for line in lines if fragment in line]
        assert found, f"the child exited ({self.process.returncode}) without printing {fragment!r}: {lines}"
        return found[0]

    async def exit_code(self, timeout: float = WAIT) -> int:
        """Waits for the child to exit and for its output to be read to the end."""
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
            await asyncio.gather(*self.readers)
        return code

    async def _read(self, stream: asyncio.StreamReader, into: list[str]) -> None:
        async for raw in stream:
            async with self._changed:
                into.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
                self._changed.notify_all()
        # EOF: wake waiters so a child that died is noticed without waiting out the timeout.
        async with self._changed:
            self._changed.notify_all()


@contextlib.asynccontextmanager
async def running_bot(args: list[str], settings: Mapping[str, str], cwd: Path) -> AsyncIterator[Child]:
    """Starts ``python -m bot ARGS`` and, however the test ends, makes sure it is gone afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=child_env(settings),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    child = Child(process)
    child.start_reading()
    try:
        yield child
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await asyncio.gather(*child.readers, return_exceptions=True)


async def wait_until_serving(url: str, child: Child, timeout: float = WAIT) -> None:
    """Polls ``url`` with short sleeps until it answers 200; fails early if the child exits."""
    async with asyncio.timeout(timeout), _fresh_connections() as session:
        while True:
            assert child.process.returncode is None, f"the bot exited early: {child.stderr}"
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)


async def wait_until_closed(url: str, timeout: float = WAIT) -> None:
    """Polls ``url`` with short sleeps until nothing listens there any more."""
    async with asyncio.timeout(timeout), _fresh_connections() as session:
        while True:
            try:
                async with session.get(url) as response:
                    await response.read()
            except aiohttp.ClientConnectionError:
                return
            await asyncio.sleep(0.05)


def _fresh_connections() -> aiohttp.ClientSession:
    # A kept-alive connection would outlive the listening socket and hide that it closed.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
