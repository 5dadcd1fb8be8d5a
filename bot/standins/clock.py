"""A clock moved by hand, for tests and scripted demos of the stand-ins."""

from __future__ import annotations

import time


class ManualClock:
    """A clock moved by hand, read like ``time.time`` (UNIX seconds)."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._now += seconds
