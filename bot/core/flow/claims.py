"""Keeping this replica's claims on its submissions in flight alive (INTERFACE §9).

Every replica, leader or not, renews its claims every ``ttl / 2`` seconds while it runs, so a claim
expires only when its owner is gone (or cannot reach the database for a whole ttl); the leader then
settles the submission (:meth:`bot.core.flow.recovery.Recovery.settle_orphans`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.core.ports import SubmissionClaims

log = logging.getLogger(__name__)


async def keep_claims(claims: SubmissionClaims, every: float, stop: asyncio.Event) -> None:
    """Renews the claims every ``every`` seconds until ``stop`` is set; a failure is logged (once while it
    repeats) and tried again next time."""
    failing: str | None = None
    while not stop.is_set():
        try:
            await claims.renew()
        except Exception as error:
            text = f"{type(error).__name__}: {error}"
            if text != failing:
                log.warning("could not renew this replica's claims on its submissions (%s)", text)
            failing = text
        else:
            if failing is not None:
                log.info("this replica's claims on its submissions are renewed again")
            failing = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
