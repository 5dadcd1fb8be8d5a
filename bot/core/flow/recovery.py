"""Settling submissions whose outcome is unknown, without ever submitting them again.

Two ways in: requests left in ``submitting`` by a replica that is gone (a crash between the confirmation
and DCS's answer: its claim expired, or a row of an earlier release has none), settled by the leader on
its regular cycle like a lost answer (:meth:`Recovery.settle_orphans`); and requests in ``checking``,
looked at once per poll cycle by the tracker with the instance's records (:meth:`Recovery.reconcile`).
Everything a look needs is in the database (``sent_at``, ``answer_lost_at``, the remark, the claims of
other requests), so a restarted bot — or another replica — carries on where the old one stopped.

A look ends checking with exactly one of: the backup found (adopted, announced with the normal start
notice and followed), several records that could be it (reported with the candidates; the request ends
``unknown``), or — once a look made after the window's deadline still finds nothing — no backup created
(reported; the request ends ``not_created``). The final notice is posted before the state changes, so a
crash in between repeats the look, never skips the notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from bot.core.flow.context import Workflow, about
from bot.core.flow.notices import Deliveries
from bot.core.flow.submission import RESTARTED, Submission
from bot.core.ports import SubmissionClaims
from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestEvent, RequestState
from bot.core.rules.instances import BackupRecord
from bot.core.rules.messages import NoBackupCreated, OutcomeAmbiguous, OutcomeChecking
from bot.core.rules.reconciliation import Ambiguous, Found, NoneCreated, span_of

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, workflow: Workflow, submission: Submission, deliveries: Deliveries) -> None:
        self._w = workflow
        self._submission = submission
        self._deliveries = deliveries

    async def settle_orphans(self, claims: SubmissionClaims, every: float, stop: asyncio.Event) -> None:
        """Every ``every`` seconds until ``stop`` is set, settles the submissions whose owner is gone (its
        claim expired, or it has none): each is adopted (its backup_id was kept, or the records show it) or
        moved to ``checking``; one that fails is tried again next time."""
        while not stop.is_set():
            try:
                await self.settle_orphaned(claims)
            except Exception:
                log.exception("could not look for interrupted submissions; trying again next interval")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)

    async def settle_orphaned(self, claims: SubmissionClaims) -> list[str]:
        """One look for submissions whose owner is gone; settles each (one that fails is logged and left
        for the next look) and returns the ids of those settled."""
        settled = []
        for request_id in await claims.orphaned():
            try:
                request = await self._w.requests.get(request_id)
                if request is not None and request.state == RequestState.SUBMITTING:
                    await self._interrupted(request)
                    settled.append(request_id)
            except Exception:
                log.exception("could not settle interrupted request %s; trying again", request_id)
        return settled

    async def _interrupted(self, request: BackupRequest) -> None:
        if request.backup_id is not None:
            await self._submission.adopt(request, request.backup_id)
            return
        await self._submission.uncertain(request, RESTARTED, lost_at=self._w.clock.now(), orphaned=True)

    async def reconcile(
        self, request: BackupRequest, records: Sequence[BackupRecord] | None, now: datetime
    ) -> None:
        """One look for a request in ``checking``, with the instance's records as listed this cycle (None
        when DCS could not be asked, or not yet)."""
        if request.backup_id is not None:
            # Kept before a crash between finding the backup and marking the request submitted.
            await self._submission.adopt(request, request.backup_id)
            return
        finding = await self._submission.look(request, records, now)
        if isinstance(finding, Found):
            await self._submission.adopt(request, finding.record.backup_id)
        elif isinstance(finding, Ambiguous):
            notice = OutcomeAmbiguous(await self._superseding(request), finding.candidates)
            candidates = [record.backup_id for record in finding.candidates]
            await self._conclude(notice.request, notice, RequestEvent.AMBIGUOUS, {"candidates": candidates})
        elif isinstance(finding, NoneCreated):
            request = await self._superseding(request)
            lost = request.answer_lost_at or request.sent_since
            checked = (finding.deadline - lost).total_seconds()
            await self._conclude(
                request,
                NoBackupCreated(request, checked),
                RequestEvent.NONE_CREATED,
                {"until": finding.deadline.isoformat()},
            )
        elif request.notice_due == "checking":
            await self._retry_checking_notice(request)

    async def _superseding(self, request: BackupRequest) -> BackupRequest:
        """The request, its owed "checking" notice dropped: what checking found says more."""
        if request.notice_due is None:
            return request
        await self._w.requests.update(request.request_id, notice_due=None, notice_refused_since=None)
        return replace(request, notice_due=None, notice_refused_since=None)

    async def _conclude(
        self,
        request: BackupRequest,
        notice: OutcomeAmbiguous | NoBackupCreated,
        event: RequestEvent,
        detail: dict[str, object],
    ) -> None:
        what = "ambiguous" if event == RequestEvent.AMBIGUOUS else "none_created"
        delivery = await self._deliveries.about_request(request, notice, what, fallback=request.response_url)
        if not delivery.settled:
            return
        ended = await self._w.requests.transition(
            request.request_id, event, now=self._w.clock.now(), notice_due=None, notice_refused_since=None
        )
        if ended is not None:
            await self._submission.close_card(ended, "undetermined" if what == "ambiguous" else "not_started")
            detail = detail | {"notice": delivery.outcome}
            await self._w.audit.record(about(ended, AuditKind.RECOVERY, None, outcome=what, detail=detail))

    async def _retry_checking_notice(self, request: BackupRequest) -> None:
        until = span_of(request, self._submission.window).deadline
        notice = OutcomeChecking(request, request.error_msg or "", until, request.error_msg == RESTARTED)
        delivery = await self._deliveries.about_request(
            request, notice, "checking", fallback=request.response_url
        )
        if delivery.settled:
            await self._w.requests.update(request.request_id, notice_due=None)
