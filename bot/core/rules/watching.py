"""Rules for watching the backup estate: which instances are watched into which channel, which final
records a watch announces, and when an instance has gone without a fresh successful backup.

The tracker (:mod:`bot.core.flow.tracker`) fetches one page of records per watched instance and cycle;
these functions decide what that page means for each watch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.rules.instances import BackupRecord, BackupStatus, Instance
from bot.core.rules.policy import Watch, ref_of


@dataclass(frozen=True)
class WatchTarget:
    """One instance watched into one channel (several ``[[watch]]`` entries merge)."""

    channel_id: str
    instance_id: str
    instance_name: str
    events: frozenset[str]
    stale_after: timedelta | None
    cloud: str | None = None


def watch_targets(watches: Sequence[Watch], instances: Iterable[Instance]) -> list[WatchTarget]:
    merged: dict[tuple[str, str], WatchTarget] = {}
    for instance in instances:
        ref = ref_of(instance)
        for watch in watches:
            if not watch.covers_instance(ref):
                continue
            key = (watch.channel, instance.instance_id)
            stale = timedelta(hours=watch.stale_after_hours) if watch.stale_after_hours else None
            known = merged.get(key)
            if known is not None:
                stale = min((s for s in (stale, known.stale_after) if s is not None), default=None)
                events = known.events | frozenset(watch.events)
            else:
                events = frozenset(watch.events)
            merged[key] = WatchTarget(
                watch.channel, instance.instance_id, instance.name, events, stale, instance.cloud
            )
    return sorted(merged.values(), key=lambda t: (t.channel_id, t.instance_name, t.instance_id))


def ended_at(record: BackupRecord) -> datetime | None:
    return record.updated_at or record.created_at


@dataclass(frozen=True)
class WatchedOutcome:
    record: BackupRecord
    announce: bool


def watched_outcomes(
    target: WatchTarget, records: Iterable[BackupRecord], watching_since: datetime, seen: set[str]
) -> list[WatchedOutcome]:
    """Final records not seen before; announced only when they ended after the watch began (no flood
    of history on first start) and their status is one of the watch's events."""
    outcomes = []
    for record in records:
        if not record.is_final or record.backup_id in seen:
            continue
        end = ended_at(record)
        fresh = end is not None and end >= watching_since
        outcomes.append(WatchedOutcome(record, fresh and record.status in target.events))
    return sorted(outcomes, key=lambda o: ended_at(o.record) or watching_since)


def last_success(records: Iterable[BackupRecord]) -> datetime | None:
    times = [ended_at(r) for r in records if r.status == BackupStatus.SUCCEED]
    return max((t for t in times if t is not None), default=None)


def is_fresh(latest: datetime | None, now: datetime, window: timedelta) -> bool:
    """Whether a backup succeeded (ending at ``latest``) within ``window`` before ``now``."""
    return latest is not None and now - latest <= window


@dataclass(frozen=True)
class StaleAlert:
    last_success: datetime | None


@dataclass(frozen=True)
class Recovered:
    last_success: datetime


def staleness_change(
    target: WatchTarget, records: Sequence[BackupRecord], now: datetime, stale_since: datetime | None
) -> StaleAlert | Recovered | None:
    """One alert when no backup succeeded within the window, one notice when one has again."""
    if target.stale_after is None:
        return None
    latest = last_success(records)
    fresh = is_fresh(latest, now, target.stale_after)
    if not fresh and stale_since is None:
        return StaleAlert(latest)
    if fresh and stale_since is not None and latest is not None:
        return Recovered(latest)
    return None
