"""The append-only audit trail (UPDATE and DELETE are refused by triggers).

Reading it streams: :meth:`SqlAuditLog.stream` reads the trail in batches by sequence number, so a trail
of millions of records is printed in constant memory, and no read transaction stays open while the reader
is slow (a pager, a pipe).

Rows are written by group commit: the rows that commands record in one turn of the event loop — and while
a write is under way — go into the database together, as one multi-row INSERT, which in the store's
autocommit model is one statement and one transaction, all or nothing. What the audit promises is kept:

- :meth:`SqlAuditLog.record` takes the row at once and returns its commit; awaiting that returns only
  once the row is committed, so a row awaited before a state change (an API call before the call, a
  decision before the card) is durable before anyone acts on or is told of that change; when the write
  fails, every caller of that batch gets the error. A write starts when a commit is awaited, so rows
  recorded and not yet awaited (a command's own row, while its instance is resolved) go in with the next.
- Rows go in, and get their ``seq``, in the order they were recorded; ``at`` is the moment of recording.
- A row once recorded is written even when its caller is cancelled; :meth:`SqlAuditLog.flush` waits
  for every row recorded so far (the bot calls it at shutdown, before closing the database).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from datetime import datetime

from bot.core.rules.audit import AuditEntry, AuditKind, AuditRecord
from bot.store.database import from_db_time, to_db_time
from bot.store.engine import Database, Row

_COLUMNS = (
    *("at", "kind", "user_id", "channel_id", "request_id", "instance_id", "instance_name", "backup_id"),
    *("rule", "outcome", "detail", "cloud"),
)
#: Rows per INSERT at most (12 parameters a row, well under SQLite's limit of 32,766).
BATCH_LIMIT = 500

_Row = tuple[str | None, ...]


class SqlAuditLog:
    def __init__(self, database: Database, clock: Callable[[], datetime]) -> None:
        self._db = database
        self._clock = clock
        self._pending: list[tuple[_Row, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        # A time condition SQLite's planner must not answer from the time index: "+at" keeps it on the
        # primary key (seq order) instead of sorting. PostgreSQL has no such hint and needs none.
        self._unindexed_at = "+at" if database.dialect == "sqlite" else "at"

    def record(self, entry: AuditEntry) -> _Commit:
        """Takes the row now; awaiting the result returns once it is committed (with others recorded
        meanwhile), and raises if it could not be."""
        committed = asyncio.get_running_loop().create_future()
        self._pending.append((self._row(entry), committed))
        return _Commit(self, committed)

    def _write_soon(self) -> None:
        if self._writer is None and self._pending:
            # Starts on the loop's next turn, so that every row recorded in this one goes along.
            self._writer = asyncio.create_task(self._write_pending(), name="audit writer")

    async def flush(self) -> None:
        """Waits until every row recorded so far is written (or has failed to be)."""
        self._write_soon()
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
            entry.cloud,
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
        await self._db.insert_rows("audit", _COLUMNS, rows)

    async def records(self, since: datetime | None = None) -> list[AuditRecord]:
        """The whole trail (from ``since``) in a list: for tests and small trails; see :meth:`stream`."""
        return [record async for record in self.stream(since)]

    async def last_seq(self) -> int:
        """The sequence number of the newest record (0 for an empty trail)."""
        newest = await self._db.fetch_value("SELECT max(seq) FROM audit")
        return 0 if newest is None else int(newest)

    async def stream(
        self, since: datetime | None = None, *, upto: int | None = None, batch: int = 1000
    ) -> AsyncIterator[AuditRecord]:
        """Records at or after ``since``, oldest first, up to the sequence number ``upto`` (default: the
        newest when the call began), read ``batch`` at a time."""
        last = await self.last_seq() if upto is None else upto
        after = await self._before_first(since)
        while after < last:
            query = "SELECT * FROM audit WHERE seq > :after AND seq <= :last"
            parameters: dict[str, object] = {"after": after, "last": last, "batch": batch}
            if since is not None:
                query += f" AND {self._unindexed_at} >= :since"
                parameters["since"] = to_db_time(since)
            rows = await self._db.fetch_all(query + " ORDER BY seq LIMIT :batch", parameters)
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
        lengths = ", ".join(
            f"coalesce(max(length(CAST({column} AS TEXT))), 0) AS {column}" for column in columns
        )
        query = f"SELECT {lengths} FROM audit WHERE seq <= :upto"
        parameters: dict[str, object] = {"upto": await self.last_seq() if upto is None else upto}
        if since is not None:
            query += " AND at >= :since"
            parameters["since"] = to_db_time(since)
        row = await self._db.fetch_one(query, parameters)
        return {column: int(row[column]) if row else 0 for column in columns}

    async def _before_first(self, since: datetime | None) -> int:
        """A sequence number below every record at or after ``since`` (found through the time index)."""
        if since is None:
            return 0
        first = await self._db.fetch_value(
            "SELECT min(seq) FROM audit WHERE at >= :since", {"since": to_db_time(since)}
        )
        if first is None:
            return await self.last_seq()
        return int(first) - 1


class _Commit:
    """The commit of one recorded row: awaiting it starts the write of what is pending, if none is under
    way, and waits for the row's batch."""

    __slots__ = ("_committed", "_log")

    def __init__(self, log: SqlAuditLog, committed: asyncio.Future[None]) -> None:
        self._log = log
        self._committed = committed

    def __await__(self) -> Generator[object, None, None]:
        self._log._write_soon()
        return self._committed.__await__()


_TEXT_COLUMNS = frozenset(
    {"seq", "at", "kind", "user_id", "channel_id", "request_id", "instance_id", "instance_name"}
    | {"backup_id", "rule", "outcome", "cloud"}
)


def _record(row: Row) -> AuditRecord:
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
        cloud=row["cloud"],
    )
    return AuditRecord(seq=row["seq"], at=from_db_time(row["at"]), entry=entry)
