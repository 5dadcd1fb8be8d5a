"""The append-only audit trail (UPDATE and DELETE are refused by triggers)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import aiosqlite

from bot.core.rules.audit import AuditEntry, AuditKind, AuditRecord
from bot.store.database import from_db_time, to_db_time


class SqliteAuditLog:
    def __init__(self, connection: aiosqlite.Connection, clock: Callable[[], datetime]) -> None:
        self._db = connection
        self._clock = clock

    async def record(self, entry: AuditEntry) -> None:
        await self._db.execute(
            "INSERT INTO audit (at, kind, user_id, channel_id, request_id, instance_id, instance_name,"
            " backup_id, rule, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                to_db_time(self._clock()),
                str(entry.kind),
                entry.user_id,
                entry.channel_id,
                entry.request_id,
                entry.instance_id,
                entry.instance_name,
                entry.backup_id,
                entry.rule,
                entry.outcome,
                json.dumps(entry.detail, sort_keys=True, default=str),
            ),
        )

    async def records(self, since: datetime | None = None) -> list[AuditRecord]:
        query = "SELECT * FROM audit"
        parameters: tuple[str, ...] = ()
        if since is not None:
            query += " WHERE at >= ?"
            parameters = (to_db_time(since),)
        async with self._db.execute(query + " ORDER BY seq", parameters) as cursor:
            rows = await cursor.fetchall()
        return [_record(row) for row in rows]


def _record(row: aiosqlite.Row) -> AuditRecord:
    entry = AuditEntry(
        kind=AuditKind(row["kind"]),
        user_id=row["user_id"],
        channel_id=row["channel_id"],
        request_id=row["request_id"],
        instance_id=row["instance_id"],
        instance_name=row["instance_name"],
        backup_id=row["backup_id"],
        rule=row["rule"],
        outcome=row["outcome"],
        detail=json.loads(row["detail"]),
    )
    return AuditRecord(seq=row["seq"], at=from_db_time(row["at"]), entry=entry)
