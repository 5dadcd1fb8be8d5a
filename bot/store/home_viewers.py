"""Who is looking at their Home tab, in the ``home_viewers`` table that every replica shares
(:class:`bot.core.ports.HomeViewers`).

The publish of a person's tab is taken by one conditional upsert on ``published_at``, by the database's
clock (:mod:`bot.store.db_clock`), so that replicas whose clocks disagree still space one person's publishes
by the interval. User groups and instance ids are stored space-separated: neither kind of id has a space.
"""

from __future__ import annotations

from datetime import datetime

from bot.core.ports import HomeViewer
from bot.store.database import to_db_time
from bot.store.db_clock import db_now, db_now_plus
from bot.store.engine import Database, Dialect

# Rows deleted per statement when pruning, so that no single write holds the database for long.
_PRUNE_BATCH = 500


def _claim(dialect: Dialect) -> str:
    return f"""
INSERT INTO home_viewers (user_id, opened_at, published_at) VALUES (:user_id, :now, {db_now(dialect)})
ON CONFLICT (user_id) DO UPDATE SET published_at = excluded.published_at
WHERE home_viewers.published_at IS NULL OR home_viewers.published_at <= {db_now_plus(dialect, "back")}
"""


def _ids(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _text(ids: frozenset[str]) -> str:
    return " ".join(sorted(ids))


class SqlHomeViewers:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._claim = _claim(database.dialect)

    async def opened(self, user_id: str, now: datetime) -> None:
        await self._db.execute(
            "INSERT INTO home_viewers (user_id, opened_at) VALUES (:user_id, :now)"
            " ON CONFLICT (user_id) DO UPDATE SET opened_at = excluded.opened_at",
            {"user_id": user_id, "now": to_db_time(now)},
        )

    async def viewing(self, since: datetime, *, limit: int) -> list[HomeViewer]:
        rows = await self._db.fetch_all(
            "SELECT user_id, user_groups, shown FROM home_viewers WHERE opened_at >= :since"
            " ORDER BY opened_at DESC LIMIT :limit",
            {"since": to_db_time(since), "limit": limit},
        )
        return [
            HomeViewer(str(row["user_id"]), _ids(str(row["user_groups"])), _ids(str(row["shown"])))
            for row in rows
        ]

    async def claim_publish(self, user_id: str, interval: float, now: datetime) -> bool:
        parameters = {"user_id": user_id, "now": to_db_time(now), "back": -float(interval)}
        return await self._db.execute(self._claim, parameters) == 1

    async def showed(self, user_id: str, groups: frozenset[str], shown: frozenset[str]) -> None:
        await self._db.execute(
            "UPDATE home_viewers SET user_groups = :groups, shown = :shown WHERE user_id = :user_id",
            {"user_id": user_id, "groups": _text(groups), "shown": _text(shown)},
        )

    async def prune(self, before: datetime) -> int:
        parameters = {"before": to_db_time(before), "batch": _PRUNE_BATCH}
        pruned = 0
        while True:
            count = await self._db.execute(
                "DELETE FROM home_viewers WHERE user_id IN (SELECT user_id"
                " FROM home_viewers WHERE opened_at < :before LIMIT :batch)",
                parameters,
            )
            pruned += count
            if count < _PRUNE_BATCH:
                return pruned
