"""What a reader sees of a backup's living channel message, so that it is updated only when that changes."""

from __future__ import annotations

import math

from bot.core.rules.messages import BackupStarted


def percent(progress: str | None) -> int | None:
    """DCS's progress (``"42.17"``) as a whole percent, or None when it gives none that reads as one."""
    try:
        value = float(progress) if progress is not None else math.nan
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return max(0, min(100, math.floor(value)))


def shown_state(message: BackupStarted) -> tuple[str, ...] | tuple[str, int | None]:
    """The backup's phase as the message shows it — with the whole percent while it runs. Two messages with
    the same shown state look alike to a reader."""
    if message.final is not None:
        return ("ended", message.final.status)
    if message.abandoned_after is not None:
        return ("abandoned",)
    if message.status == "backuping":
        return ("backuping", percent(message.progress))
    return (message.status or "waiting",)
