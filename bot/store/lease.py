"""A lease on the background work in the shared database, with a fencing epoch (INTERFACE §9).

One row per lease: its holder, the epoch (incremented whenever the holder changes) and when it expires,
by the database's clock (:mod:`bot.store.db_clock`). Taking and renewing are one conditional upsert, so of
replicas trying at once exactly one holds the lease afterwards (on PostgreSQL the conflicting INSERT waits
for the other's row and then evaluates the condition against it).
"""

from __future__ import annotations

from bot.store.db_clock import db_now, db_now_plus
from bot.store.engine import Database, Dialect

#: The lease of the background work: the tracker, the watch, housekeeping and reconciliation.
BACKGROUND = "background"


def _acquire(dialect: Dialect) -> str:
    # Succeeds when the lease is free (no row), expired, or already this holder's; a new holder gets a new
    # epoch. Standard SQL upsert (SQLite 3.35+, PostgreSQL 9.5+).
    return f"""
INSERT INTO leases (name, holder, epoch, expires_at) VALUES (:name, :holder, 1, {db_now_plus(dialect, "ttl")})
ON CONFLICT (name) DO UPDATE SET
    epoch = CASE WHEN leases.holder = excluded.holder THEN leases.epoch ELSE leases.epoch + 1 END,
    holder = excluded.holder,
    expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= {db_now(dialect)}
RETURNING epoch
"""


def _holds(dialect: Dialect) -> str:
    return f"""
SELECT 1 FROM leases
WHERE name = :name AND holder = :holder AND epoch = :epoch AND expires_at > {db_now(dialect)}
"""


def _release(dialect: Dialect) -> str:
    return f"""
UPDATE leases SET expires_at = {db_now(dialect)}
WHERE name = :name AND holder = :holder AND epoch = :epoch AND expires_at > {db_now(dialect)}
"""


class SqlLease:
    """:class:`bot.core.ports.Lease` in the ``leases`` table."""

    def __init__(self, database: Database, *, holder: str, ttl: float, name: str = BACKGROUND) -> None:
        self._db = database
        self._holder = holder
        self._ttl = float(ttl)
        self._name = name
        self._acquire, self._holds, self._release = (
            statement(database.dialect) for statement in (_acquire, _holds, _release)
        )

    @property
    def holder(self) -> str:
        return self._holder

    async def acquire(self) -> int | None:
        parameters = {"name": self._name, "holder": self._holder, "ttl": self._ttl}
        epoch = await self._db.fetch_value(self._acquire, parameters)
        return None if epoch is None else int(epoch)

    async def holds(self, epoch: int) -> bool:
        parameters = {"name": self._name, "holder": self._holder, "epoch": epoch}
        return await self._db.fetch_one(self._holds, parameters) is not None

    async def release(self, epoch: int) -> None:
        await self._db.execute(self._release, {"name": self._name, "holder": self._holder, "epoch": epoch})
