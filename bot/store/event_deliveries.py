"""Events API deliveries seen, by event id: the first delivery of an event is handled, a redelivery (Slack
retries what was not acknowledged within 3 s, to whichever replica) is not. One ``INSERT … ON CONFLICT DO
NOTHING`` decides, so two replicas given the same event at the same moment cannot both take it."""

from __future__ import annotations

from datetime import datetime

from bot.store.database import to_db_time
from bot.store.engine import Database

# Rows deleted per statement when pruning, so that no single write holds the database for long.
_PRUNE_BATCH = 500


class SqlEventDeliveries:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def first_delivery(self, event_id: str, now: datetime) -> bool:
        inserted = await self._db.execute(
            "INSERT INTO slack_event_deliveries (event_id, received_at) VALUES (:event_id, :now)"
            " ON CONFLICT DO NOTHING",
            {"event_id": event_id, "now": to_db_time(now)},
        )
        return inserted == 1

    async def prune(self, before: datetime) -> int:
        parameters = {"before": to_db_time(before), "batch": _PRUNE_BATCH}
        pruned = 0
        while True:
            count = await self._db.execute(
                "DELETE FROM slack_event_deliveries WHERE event_id IN (SELECT event_id"
                " FROM slack_event_deliveries WHERE received_at < :before LIMIT :batch)",
                parameters,
            )
            pruned += count
            if count < _PRUNE_BATCH:
                return pruned
