"""CPU time and resident memory of a process, read from Linux's /proc (no extra dependency)."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of all threads of ``pid`` so far, those that ended included (10 ms
    resolution on most kernels)."""
    return _cpu(Path(f"/proc/{pid}/stat"))


def main_thread_cpu_seconds(pid: int) -> float:
    """The same for the main thread alone: in the bot, the event loop (aiosqlite works in a thread of its
    own)."""
    return _cpu(Path(f"/proc/{pid}/task/{pid}/stat"))


def _cpu(path: Path) -> float:
    stat = path.read_text()
    # The command name (field 2) is in parentheses and may contain spaces: split after its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    user, system = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (user + system) / _TICKS_PER_SECOND


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` now (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"/proc/{pid}/status has no VmRSS line")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
