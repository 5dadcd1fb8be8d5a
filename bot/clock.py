"""Wall-clock time for the core (which takes a Clock so tests and the demo can control it)."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
