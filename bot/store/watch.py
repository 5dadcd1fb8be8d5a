"""Watch state in SQLite: when watching began, which final backups were seen, whether an alert is open."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import aiosqlite

from bot.core.ports import WatchState
from bot.store.database import from_db_time, maybe_time, to_db_time

# Rows deleted per statement when forgetting, so that no single write holds the database for long.
_FORGET_BATCH = 500


class SqliteWatchStore:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    async def state(self, channel_id: str, instance_id: str, instance_name: str, now: datetime) -> WatchState:
        await self._db.execute(
            "INSERT OR IGNORE INTO watch_state (channel_id, instance_id, instance_name, watching_since)"
            " VALUES (?, ?, ?, ?)",
            (channel_id, instance_id, instance_name, to_db_time(now)),
        )
        async with self._db.execute(
            "SELECT watching_since, stale_since FROM watch_state WHERE channel_id = ? AND instance_id = ?",
            (channel_id, instance_id),
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        return WatchState(from_db_time(row["watching_since"]), maybe_time(row["stale_since"]))

    async def seen(self, channel_id: str, backup_ids: Iterable[str]) -> set[str]:
        wanted = list(backup_ids)
        if not wanted:
            return set()
        marks = ", ".join("?" for _ in wanted)
        async with self._db.execute(
            f"SELECT backup_id FROM watch_seen WHERE channel_id = ? AND backup_id IN ({marks})",
            [channel_id, *wanted],
        ) as cursor:
            rows = await cursor.fetchall()
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
        cursor = await self._db.execute(
            "INSERT OR IGNORE INTO watch_seen"
            " (channel_id, backup_id, instance_id, status, announced, seen_at) VALUES (?, ?, ?, ?, ?, ?)",
            (channel_id, backup_id, instance_id, status, int(announced), to_db_time(now)),
        )
        return cursor.rowcount == 1

    async def set_stale(
        self, channel_id: str, instance_id: str, *, since: datetime | None, expected: datetime | None
    ) -> bool:
        condition = "stale_since IS NULL" if expected is None else "stale_since = :expected"
        cursor = await self._db.execute(
            f"UPDATE watch_state SET stale_since = :since"
            f" WHERE channel_id = :channel AND instance_id = :instance AND {condition}",
            {
                "since": None if since is None else to_db_time(since),
                "expected": None if expected is None else to_db_time(expected),
                "channel": channel_id,
                "instance": instance_id,
            },
        )
        return cursor.rowcount == 1

    async def forget(self, before: datetime) -> int:
        cutoff = to_db_time(before)
        forgotten = 0
        while True:
            cursor = await self._db.execute(
                "DELETE FROM watch_seen WHERE rowid IN"
                " (SELECT rowid FROM watch_seen WHERE seen_at < ? LIMIT ?)",
                (cutoff, _FORGET_BATCH),
            )
            forgotten += cursor.rowcount
            if cursor.rowcount < _FORGET_BATCH:
                break
        await self._db.execute(
            "UPDATE watch_state SET watching_since = ? WHERE watching_since < ?", (cutoff, cutoff)
        )
        return forgotten
