"""Watch state: when watching began, which final backups were seen, whether an alert is open."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.core.ports import WatchState
from bot.store.database import from_db_time, maybe_time, to_db_time
from bot.store.engine import Database

# Rows deleted per statement when forgetting, so that no single write holds the database for long.
_FORGET_BATCH = 500


class SqlWatchStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def state(self, channel_id: str, instance_id: str, instance_name: str, now: datetime) -> WatchState:
        key = {"channel_id": channel_id, "instance_id": instance_id}
        await self._db.execute(
            "INSERT INTO watch_state (channel_id, instance_id, instance_name, watching_since)"
            " VALUES (:channel_id, :instance_id, :instance_name, :now) ON CONFLICT DO NOTHING",
            key | {"instance_name": instance_name, "now": to_db_time(now)},
        )
        row = await self._db.fetch_one(
            "SELECT watching_since, stale_since FROM watch_state"
            " WHERE channel_id = :channel_id AND instance_id = :instance_id",
            key,
        )
        assert row is not None
        return WatchState(from_db_time(row["watching_since"]), maybe_time(row["stale_since"]))

    async def seen(self, channel_id: str, backup_ids: Iterable[str]) -> set[str]:
        wanted = list(backup_ids)
        if not wanted:
            return set()
        marks = ", ".join(f":backup{index}" for index in range(len(wanted)))
        rows = await self._db.fetch_all(
            f"SELECT backup_id FROM watch_seen WHERE channel_id = :channel_id AND backup_id IN ({marks})",
            {"channel_id": channel_id} | {f"backup{index}": backup for index, backup in enumerate(wanted)},
        )
        return {row["backup_id"] for row in rows}

    async def remember(
        self,
        channel_id: str,
        backup_id: str,
        instance_id: str,
        status: str,
        *,
        announced: bool,
        now: datetime,
    ) -> bool:
        inserted = await self._db.execute(
            "INSERT INTO watch_seen (channel_id, backup_id, instance_id, status, announced, seen_at)"
            " VALUES (:channel_id, :backup_id, :instance_id, :status, :announced, :now)"
            " ON CONFLICT DO NOTHING",
            {
                "channel_id": channel_id,
                "backup_id": backup_id,
                "instance_id": instance_id,
                "status": status,
                "announced": int(announced),
                "now": to_db_time(now),
            },
        )
        return inserted == 1

    async def set_stale(
        self, channel_id: str, instance_id: str, *, since: datetime | None, expected: datetime | None
    ) -> bool:
        condition = "stale_since IS NULL" if expected is None else "stale_since = :expected"
        changed = await self._db.execute(
            f"UPDATE watch_state SET stale_since = :since"
            f" WHERE channel_id = :channel AND instance_id = :instance AND {condition}",
            {
                "since": None if since is None else to_db_time(since),
                "expected": None if expected is None else to_db_time(expected),
                "channel": channel_id,
                "instance": instance_id,
            },
        )
        return changed == 1

    async def forget(self, before: datetime) -> int:
        cutoff = to_db_time(before)
        forgotten = 0
        while True:
            count = await self._db.execute(
                "DELETE FROM watch_seen WHERE (channel_id, backup_id) IN"
                " (SELECT channel_id, backup_id FROM watch_seen WHERE seen_at < :cutoff LIMIT :batch)",
                {"cutoff": cutoff, "batch": _FORGET_BATCH},
            )
            forgotten += count
            if count < _FORGET_BATCH:
                break
        await self._db.execute(
            "UPDATE watch_state SET watching_since = :cutoff WHERE watching_since < :cutoff",
            {"cutoff": cutoff},
        )
        return forgotten
