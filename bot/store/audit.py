"""The append-only audit trail (UPDATE and DELETE are refused by triggers).

Reading it streams: :meth:`SqliteAuditLog.stream` reads the trail in batches by sequence number, so a trail
of millions of records is printed in constant memory, and no read transaction stays open while the reader
is slow (a pager, a pipe).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
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
        """The whole trail (from ``since``) in a list: for tests and small trails; see :meth:`stream`."""
        return [record async for record in self.stream(since)]

    async def last_seq(self) -> int:
        """The sequence number of the newest record (0 for an empty trail)."""
        async with self._db.execute("SELECT max(seq) FROM audit") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    async def stream(
        self, since: datetime | None = None, *, upto: int | None = None, batch: int = 1000
    ) -> AsyncIterator[AuditRecord]:
        """Records at or after ``since``, oldest first, up to the sequence number ``upto`` (default: the
        newest when the call began), read ``batch`` at a time."""
        last = await self.last_seq() if upto is None else upto
        after = await self._before_first(since)
        while after < last:
            # "+at" keeps SQLite on the primary key (seq order) instead of sorting by the time index.
            query = "SELECT * FROM audit WHERE seq > ? AND seq <= ?"
            parameters: list[object] = [after, last]
            if since is not None:
                query += " AND +at >= ?"
                parameters.append(to_db_time(since))
            async with self._db.execute(query + " ORDER BY seq LIMIT ?", [*parameters, batch]) as cursor:
                rows = list(await cursor.fetchall())
            if not rows:
                return
            for row in rows:
                yield _record(row)
            after = int(rows[-1]["seq"])

    async def longest(
        self, columns: Sequence[str], since: datetime | None = None, *, upto: int | None = None
    ) -> dict[str, int]:
        """The length of the longest text in each of ``columns`` among the records :meth:`stream` would
        return (0 where all are empty): what a table needs to line up, without holding the rows."""
        unknown = set(columns) - _TEXT_COLUMNS
        if unknown:
            raise ValueError(f"not audit columns: {sorted(unknown)}")
        lengths = ", ".join(f"coalesce(max(length({column})), 0)" for column in columns)
        query = f"SELECT {lengths} FROM audit WHERE seq <= ?"
        parameters: list[object] = [await self.last_seq() if upto is None else upto]
        if since is not None:
            query += " AND at >= ?"
            parameters.append(to_db_time(since))
        async with self._db.execute(query, parameters) as cursor:
            row = await cursor.fetchone()
        return {column: int(row[index]) if row else 0 for index, column in enumerate(columns)}

    async def _before_first(self, since: datetime | None) -> int:
        """A sequence number below every record at or after ``since`` (found through the time index)."""
        if since is None:
            return 0
        query = "SELECT min(seq) FROM audit WHERE at >= ?"
        async with self._db.execute(query, (to_db_time(since),)) as cursor:
            row = await cursor.fetchone()
        if row is None or row[0] is None:
            return await self.last_seq()
        return int(row[0]) - 1


_TEXT_COLUMNS = frozenset(
    {"seq", "at", "kind", "user_id", "channel_id", "request_id", "instance_id", "instance_name"}
    | {"backup_id", "rule", "outcome"}
)


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
