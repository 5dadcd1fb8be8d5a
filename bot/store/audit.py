"""The append-only audit trail (UPDATE and DELETE are refused by triggers).

Rows are written by group commit: the rows that commands record in one turn of the event loop — and while
a write is under way — go into the database together, as one multi-row INSERT, which in the store's
autocommit model is one statement and one transaction, all or nothing. What the audit promises is kept:

- :meth:`SqliteAuditLog.record` returns only once its row is committed, so a row recorded before a state
  change (an API call before the call, a decision before the card) is durable before anyone acts on or
  is told of that change; when the write fails, every caller of that batch gets the error.
- Rows go in, and get their ``seq``, in the order they were recorded; ``at`` is the moment of recording.
- A row once recorded is written even when its caller is cancelled; :meth:`SqliteAuditLog.flush` waits
  for every row recorded so far (the bot calls it at shutdown, before closing the database).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime

import aiosqlite

from bot.core.rules.audit import AuditEntry, AuditKind, AuditRecord
from bot.store.database import from_db_time, to_db_time

_COLUMNS = (
    "at, kind, user_id, channel_id, request_id, instance_id, instance_name, backup_id, rule, outcome, detail"
)
_ROW_MARKS = "(" + ", ".join("?" * 11) + ")"
#: Rows per INSERT at most (11 parameters a row, well under SQLite's limit of 32,766).
BATCH_LIMIT = 500

_Row = tuple[str | None, ...]


class SqliteAuditLog:
    def __init__(self, connection: aiosqlite.Connection, clock: Callable[[], datetime]) -> None:
        self._db = connection
        self._clock = clock
        self._pending: list[tuple[_Row, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, entry: AuditEntry) -> None:
        """Returns once the row is committed (with others recorded meanwhile); raises if it could not be."""
        committed = asyncio.get_running_loop().create_future()
        self._pending.append((self._row(entry), committed))
        if self._writer is None:
            # Starts on the loop's next turn, so that every row recorded in this one goes along.
            self._writer = asyncio.create_task(self._write_pending(), name="audit writer")
        await committed

    async def flush(self) -> None:
        """Waits until every row recorded so far is written (or has failed to be)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    def _row(self, entry: AuditEntry) -> _Row:
        return (
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
        )

    async def _write_pending(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:BATCH_LIMIT]
                del self._pending[:BATCH_LIMIT]
                try:
                    await self._insert([row for row, _ in batch])
                except Exception as error:
                    for _, committed in batch:
                        if not committed.done():
                            committed.set_exception(error)
                            committed.exception()  # a cancelled caller will not look: no warning
                except BaseException:
                    for _, committed in batch:
                        committed.cancel()
                    raise
                else:
                    for _, committed in batch:
                        if not committed.done():
                            committed.set_result(None)
        finally:
            self._writer = None
            for _, committed in self._pending:  # left only when the writer itself was cancelled
                committed.cancel()

    async def _insert(self, rows: list[_Row]) -> None:
        values = ", ".join([_ROW_MARKS] * len(rows))
        await self._db.execute(
            f"INSERT INTO audit ({_COLUMNS}) VALUES {values}", [value for row in rows for value in row]
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
