"""Claims on submissions in flight (INTERFACE §9): the replica making a submission owns it while it lives.

The claim itself (``requests.claimed_by``, ``requests.claim_until``) is written by
:class:`bot.store.requests.SqlRequestStore` in the same UPDATE that moves the request into
``submitting``; here it is renewed, and the submissions whose owner is gone are found. Times are the
database's (:mod:`bot.store.db_clock`).
"""

from __future__ import annotations

from bot.core.ports import Claimant
from bot.core.rules.backup_request import RequestState
from bot.store.db_clock import db_now, db_now_plus
from bot.store.engine import Database, Dialect

_SUBMITTING = str(RequestState.SUBMITTING)


def orphaned_condition(dialect: Dialect) -> str:
    """A request's claim has run out, or it has none, and it is not the claim of ``:replica``: the SQL
    condition, for the look and for the move of an orphan alike (so that a claim renewed in between
    keeps its request)."""
    return f"(claimed_by IS NULL OR (claimed_by <> :replica AND claim_until <= {db_now(dialect)}))"


class SqlSubmissionClaims:
    """:class:`bot.core.ports.SubmissionClaims` on the ``requests`` table."""

    def __init__(self, database: Database, claimant: Claimant) -> None:
        self._db = database
        self._claimant = claimant
        self._renew = (
            f"UPDATE requests SET claim_until = {db_now_plus(database.dialect, 'ttl')}"
            " WHERE claimed_by = :replica AND state = :submitting"
        )
        self._orphaned = (
            "SELECT request_id FROM requests WHERE state = :submitting"
            f" AND {orphaned_condition(database.dialect)} ORDER BY created_at"
        )

    async def renew(self) -> int:
        return await self._db.execute(
            self._renew,
            {"replica": self._claimant.replica, "ttl": float(self._claimant.ttl), "submitting": _SUBMITTING},
        )

    async def orphaned(self) -> list[str]:
        parameters = {"replica": self._claimant.replica, "submitting": _SUBMITTING}
        return [str(row["request_id"]) for row in await self._db.fetch_all(self._orphaned, parameters)]
