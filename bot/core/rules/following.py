"""Rules for following a backup started through the bot to its end: what its record (or its absence)
means after how long — still running, ended (and how long it took), or followed long enough.

The tracker (:mod:`bot.core.flow.tracker`) fetches the records; :func:`judge` decides what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.rules.backup_request import BackupRequest
from bot.core.rules.instances import BackupRecord, BackupStatus

KNOWN_STATUSES = frozenset(str(status) for status in BackupStatus)


@dataclass(frozen=True)
class StillRunning:
    status: str | None

    @property
    def status_is_unknown(self) -> bool:
        return self.status is not None and self.status not in KNOWN_STATUSES


@dataclass(frozen=True)
class Ended:
    record: BackupRecord
    duration_seconds: float | None


@dataclass(frozen=True)
class GiveUp:
    followed_seconds: float


Verdict = StillRunning | Ended | GiveUp


def duration_of(record: BackupRecord) -> float | None:
    if record.created_at is None or record.updated_at is None:
        return None
    return max(0.0, (record.updated_at - record.created_at).total_seconds())


def judge(
    request: BackupRequest, record: BackupRecord | None, now: datetime, give_up_after: timedelta
) -> Verdict:
    """What to do about a backup started through the bot, given its record (None: not listed yet)."""
    if record is not None and record.is_final:
        return Ended(record, duration_of(record))
    followed = now - (request.submitted_at or request.created_at)
    if followed >= give_up_after:
        return GiveUp(followed.total_seconds())
    return StillRunning(None if record is None else record.status)
