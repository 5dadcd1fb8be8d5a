"""A lease on the background work in the shared database, with a fencing epoch (INTERFACE §9).

One row per lease: its holder, the epoch (incremented whenever the holder changes) and when it expires,
by the database's clock (:mod:`bot.store.db_clock`). Taking and renewing are one conditional upsert, so of
replicas trying at once exactly one holds the lease afterwards.
"""

from __future__ import annotations

import aiosqlite

from bot.store.db_clock import db_now, db_now_plus

#: The lease of the background work: the tracker, the watch, housekeeping and reconciliation.
BACKGROUND = "background"

# Succeeds when the lease is free (no row), expired, or already this holder's; a new holder gets a new
# epoch. Standard SQL upsert (SQLite 3.35+, PostgreSQL 9.5+).
_ACQUIRE = f"""
INSERT INTO leases (name, holder, epoch, expires_at) VALUES (:name, :holder, 1, {db_now_plus("ttl")})
ON CONFLICT (name) DO UPDATE SET
    epoch = CASE WHEN leases.holder = excluded.holder THEN leases.epoch ELSE leases.epoch + 1 END,
    holder = excluded.holder,
    expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= {db_now()}
RETURNING epoch
"""
_HOLDS = f"""
SELECT 1 FROM leases
WHERE name = :name AND holder = :holder AND epoch = :epoch AND expires_at > {db_now()}
"""
_RELEASE = f"""
UPDATE leases SET expires_at = {db_now()}
WHERE name = :name AND holder = :holder AND epoch = :epoch AND expires_at > {db_now()}
"""


class SqliteLease:
    """:class:`bot.core.ports.Lease` in the ``leases`` table."""

    def __init__(self, connection: aiosqlite.Connection, *, holder: str, ttl: float, name: str = BACKGROUND):
        self._db = connection
        self._holder = holder
        self._ttl = ttl
        self._name = name

    @property
    def holder(self) -> str:
        return self._holder

    async def acquire(self) -> int | None:
        parameters = {"name": self._name, "holder": self._holder, "ttl": self._ttl}
        async with self._db.execute(_ACQUIRE, parameters) as cursor:
            row = await cursor.fetchone()
        return None if row is None else int(row[0])

    async def holds(self, epoch: int) -> bool:
        parameters = {"name": self._name, "holder": self._holder, "epoch": epoch}
        async with self._db.execute(_HOLDS, parameters) as cursor:
            return await cursor.fetchone() is not None

    async def release(self, epoch: int) -> None:
        await self._db.execute(_RELEASE, {"name": self._name, "holder": self._holder, "epoch": epoch})
