"""Child processes of the benchmark: started with a clean environment, logging to files, always stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

#: Upper bound for a child to start serving or to stop.
WAIT = 30.0


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago, for a child that must be told its port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def child_env(settings: Mapping[str, str]) -> dict[str, str]:
    """Only what Python needs to run, plus ``settings``: nothing inherited that the bot might read."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    return env | {"PYTHONUNBUFFERED": "1"} | dict(settings)


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within :data:`WAIT` seconds."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(WAIT):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode


@contextlib.asynccontextmanager
async def running(
    name: str,
    args: Sequence[str],
    *,
    settings: Mapping[str, str],
    cwd: Path,
    ready_url: str,
) -> AsyncIterator[Child]:
    """Starts ``args`` (output to ``cwd/NAME.log``), waits until ``ready_url`` answers 200, and stops the
    child however the block ends."""
    log = cwd / f"{name}.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *args,
            env=child_env(settings),
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    child = Child(name, process, log)
    try:
        await _wait_until_serving(ready_url, child)
        yield child
    finally:
        await child.stop()


async def _wait_until_serving(url: str, child: Child) -> None:
    connector = aiohttp.TCPConnector(force_close=True)
    async with asyncio.timeout(WAIT), aiohttp.ClientSession(connector=connector) as session:
        while True:
            if child.process.returncode is not None:
                raise RuntimeError(f"{child.name} exited ({child.process.returncode}):\n{child.tail()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
