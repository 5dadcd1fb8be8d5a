"""Claims on submissions in flight (INTERFACE §9): the replica making a submission owns it while it lives.

The claim itself (``requests.claimed_by``, ``requests.claim_until``) is written by
:class:`bot.store.requests.SqliteRequestStore` in the same UPDATE that moves the request into
``submitting``; here it is renewed, and the submissions whose owner is gone are found. Times are the
database's (:mod:`bot.store.db_clock`).
"""

from __future__ import annotations

import aiosqlite

from bot.core.ports import Claimant
from bot.core.rules.backup_request import RequestState
from bot.store.db_clock import db_now, db_now_plus

_SUBMITTING = str(RequestState.SUBMITTING)
_RENEW = f"""
UPDATE requests SET claim_until = {db_now_plus("ttl")}
WHERE claimed_by = :replica AND state = :submitting
"""
_ORPHANED = f"""
SELECT request_id FROM requests
WHERE state = :submitting
    AND (claimed_by IS NULL OR (claimed_by <> :replica AND claim_until <= {db_now()}))
ORDER BY created_at
"""


class SqliteSubmissionClaims:
    """:class:`bot.core.ports.SubmissionClaims` on the ``requests`` table."""

    def __init__(self, connection: aiosqlite.Connection, claimant: Claimant) -> None:
        self._db = connection
        self._claimant = claimant

    async def renew(self) -> int:
        cursor = await self._db.execute(
            _RENEW,
            {"replica": self._claimant.replica, "ttl": self._claimant.ttl, "submitting": _SUBMITTING},
        )
        return cursor.rowcount

    async def orphaned(self) -> list[str]:
        parameters = {"replica": self._claimant.replica, "submitting": _SUBMITTING}
        async with self._db.execute(_ORPHANED, parameters) as cursor:
            return [str(row[0]) for row in await cursor.fetchall()]
