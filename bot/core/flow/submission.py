"""Submitting a confirmed request to DCS — at most once — and announcing whether the backup started.

DCS's answer decides: a ``backup_id`` is a start; a 4xx (DCS or its gateway saying no, 429 included) is a
refusal, and the backup was not started. Anything else — no answer within ``DCS_TIMEOUT``, a connection
lost, a 5xx (after which the backend may have run), a body that cannot be read — leaves the outcome
**unknown**: the bot looks once in the instance's records at once and, unless the backup is there, tells
the channel it is checking and moves the request to ``checking``, where the recovery path
(:mod:`bot.core.flow.recovery`) looks again every cycle. The POST is never sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bot.core.errors import DcsApiError, DcsError
from bot.core.flow.context import Workflow, about, describe
from bot.core.flow.notices import Deliveries, response_url_usable
from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import UNSETTLED_STATES, BackupRequest, RequestEvent
from bot.core.rules.instances import BackupRecord
from bot.core.rules.messages import (
    ApiFailure,
    BackupNotStarted,
    BackupStarted,
    CardClosed,
    CardOutcome,
    OutcomeChecking,
)
from bot.core.rules.reconciliation import Finding, Found, could_be, reconcile, span_of

log = logging.getLogger(__name__)

# Why the outcome of a submission a previous process was making is unknown.
RESTARTED = "the bot restarted while submitting it"
_UNEXPECTED = "the bot could not read DCS's answer"
# DCS keeps the 24 newest records of an instance, so one page of this size shows all of them.
RECORDS_PAGE = 50


def is_refusal(error: DcsError) -> bool:
    """Whether DCS (or its gateway) definitely did not carry out the call: a 4xx answer. A 5xx may come
    from a gateway after the backend ran, so it is no refusal."""
    return isinstance(error, DcsApiError) and 400 <= error.status < 500


class Submission:
    def __init__(self, workflow: Workflow, deliveries: Deliveries, window: timedelta) -> None:
        self._w = workflow
        self._deliveries = deliveries
        self._window = window

    @property
    def window(self) -> timedelta:
        return self._window

    async def submit(self, request: BackupRequest) -> None:
        """Calls CreateBackup for a request in ``submitting`` and announces the result in the channel."""
        await self._w.audit.record(
            about(
                request,
                AuditKind.API_CALL,
                request.confirmed_by,
                detail={
                    "call": "create_backup",
                    "format": str(request.backup_format),
                    "remark": request.remark,
                },
            )
        )
        # Kept before the call, so that whoever settles the request later knows when it can have left.
        sent_at = self._w.clock.now()
        await self._w.requests.update(request.request_id, sent_at=sent_at)
        request = replace(request, sent_at=sent_at)
        try:
            backup_id = await self._w.dcs_of(request.cloud).create_backup(
                request.instance_id, backup_format=request.backup_format, remark=request.remark
            )
        except DcsError as error:
            if isinstance(error, DcsApiError) and is_refusal(error):
                await self._refused(request, error)
            else:
                await self._unknown(request, describe(error), error)
            return
        except Exception:
            log.exception(
                "the backup call of request %s failed unexpectedly; its outcome is unknown",
                request.request_id,
            )
            await self._unknown(request, _UNEXPECTED, None)
            return
        await self.accepted(request, backup_id)

    async def accepted(self, request: BackupRequest, backup_id: str, *, adopted: bool = False) -> None:
        """Keeps the ``backup_id``, announces the start and marks the request submitted (from ``submitting``
        or ``checking``). A start notice Slack refuses is owed: the tracker tries it again."""
        # Kept at once, so that a crash from here on leaves a request whose backup is known exactly.
        await self._w.requests.update(request.request_id, backup_id=backup_id)
        started = request.with_state(request.state, backup_id=backup_id)
        await self._w.audit.record(
            about(started, AuditKind.API_RESULT, started.confirmed_by, outcome="accepted")
        )
        # Announce before the request becomes "submitted": the tracker follows only submitted requests, and
        # must find the channel message's ts to answer in its thread.
        delivered = await self._deliveries.post(
            started.channel_id, BackupStarted(started, adopted), fallback=started.response_url
        )
        now = self._w.clock.now()
        await self._w.requests.transition(
            request.request_id,
            RequestEvent.ACCEPTED,
            now=now,
            backup_id=backup_id,
            message_ts=delivered.ts if delivered is not None else None,
            notice_due=None if delivered is not None else "started",
            notice_refused_since=None if delivered is not None else now,
        )
        await self.close_card(started, "started")

    async def uncertain(
        self,
        request: BackupRequest,
        reason: str,
        *,
        lost_at: datetime,
        error_code: str | None = None,
        orphaned: bool = False,
    ) -> None:
        """The outcome of ``request``'s submission is unknown (``reason``): adopt its backup if the records
        show it already, else say so in the channel and leave the request ``checking``.

        With ``orphaned`` (the leader settling a submission whose owner is gone) the move to ``checking``
        comes first, on condition that the claim has still run out, and the notice follows, owed until it
        is delivered: an owner that renewed its claim meanwhile keeps its submission, and the channel is
        not told it is being checked."""
        request = replace(request, answer_lost_at=lost_at)
        restarted = reason == RESTARTED
        finding = await self.look(request, await self.records(request), self._w.clock.now())
        if isinstance(finding, Found):
            await self.adopt(request, finding.record.backup_id)
            return
        until = span_of(request, self._window).deadline
        notice = OutcomeChecking(request, reason, until, restarted)
        if orphaned:
            checking = await self._w.requests.transition(
                request.request_id,
                RequestEvent.OUTCOME_UNKNOWN,
                now=self._w.clock.now(),
                orphaned=True,
                notice_due="checking",
                answer_lost_at=lost_at,
                error_code=error_code,
                error_msg=reason,
            )
            if checking is None:
                return
            delivered = await self._deliveries.post(request.channel_id, notice, fallback=request.response_url)
            if delivered is not None:
                await self._w.requests.update(request.request_id, notice_due=None)
            else:
                await self._w.requests.update(request.request_id, notice_refused_since=self._w.clock.now())
        else:
            delivered = await self._deliveries.post(request.channel_id, notice, fallback=request.response_url)
            now = self._w.clock.now()
            checking = await self._w.requests.transition(
                request.request_id,
                RequestEvent.OUTCOME_UNKNOWN,
                now=now,
                notice_due=None if delivered is not None else "checking",
                notice_refused_since=None if delivered is not None else now,
                answer_lost_at=lost_at,
                error_code=error_code,
                error_msg=reason,
            )
        if checking is not None:
            await self.close_card(checking, "checking")
        if checking is not None and restarted:
            await self._w.audit.record(
                about(
                    checking,
                    AuditKind.RECOVERY,
                    None,
                    outcome="checking",
                    detail={"until": until.isoformat()},
                )
            )

    async def adopt(self, request: BackupRequest, backup_id: str) -> None:
        """The backup of a request whose answer was lost was found: record it, then announce and follow."""
        detail: dict[str, object] = {"backup_id": backup_id}
        await self._w.audit.record(about(request, AuditKind.RECOVERY, None, outcome="adopted", detail=detail))
        await self.accepted(request, backup_id, adopted=True)

    async def records(self, request: BackupRequest) -> list[BackupRecord] | None:
        """The instance's records since ``request``'s window began; None when DCS cannot tell now."""
        try:
            page = await self._w.dcs_of(request.cloud).list_backups(
                request.instance_id,
                begin_time=span_of(request, self._window).earliest,
                limit=RECORDS_PAGE,
            )
        except DcsError as error:
            log.warning("cannot look for the backup of request %s yet: %s", request.request_id, error)
            return None
        return list(page.records)

    async def look(
        self, request: BackupRequest, records: Sequence[BackupRecord] | None, looked_at: datetime
    ) -> Finding | None:
        """What ``records`` (listed at ``looked_at`` or later) say about ``request``'s backup; None when
        there are no records to judge (DCS could not be asked)."""
        if records is None:
            return None
        span = span_of(request, self._window)
        claimed: set[str] = set()
        for record in records:
            if could_be(request, record, span):
                owner = await self._w.requests.by_backup_id(record.backup_id)
                if owner is not None and owner.request_id != request.request_id:
                    claimed.add(record.backup_id)
        rivals = [
            other
            for other in await self._w.requests.in_states(*UNSETTLED_STATES)
            if other.instance_id == request.instance_id and other.request_id != request.request_id
        ]
        return reconcile(
            request,
            records,
            looked_at=looked_at,
            window=self._window,
            claimed=frozenset(claimed),
            rivals=rivals,
        )

    async def _unknown(self, request: BackupRequest, reason: str, error: DcsError | None) -> None:
        lost_at = self._w.clock.now()
        detail: dict[str, object] = {"reason": reason}
        if isinstance(error, DcsApiError):
            detail |= {
                "status": error.status,
                "error_code": error.error_code,
                "dcs_request_id": error.request_id,
            }
        await self._w.audit.record(
            about(request, AuditKind.API_RESULT, request.confirmed_by, outcome="unknown", detail=detail)
        )
        code = error.error_code if isinstance(error, DcsApiError) else None
        await self.uncertain(request, reason, lost_at=lost_at, error_code=code)

    async def _refused(self, request: BackupRequest, error: DcsApiError) -> None:
        now = self._w.clock.now()
        failed = await self._w.requests.transition(
            request.request_id,
            RequestEvent.REFUSED,
            now=now,
            error_code=error.error_code,
            error_msg=error.error_msg,
            error_status=error.status,
            error_hint=error.hint,
            error_request_id=error.request_id,
        )
        if failed is None:
            return
        await self._w.audit.record(
            about(
                failed,
                AuditKind.API_RESULT,
                failed.confirmed_by,
                outcome="refused",
                detail={
                    "status": error.status,
                    "error_code": error.error_code,
                    "error_msg": error.error_msg,
                    "dcs_request_id": error.request_id,
                },
            )
        )
        delivered = await self._deliveries.post(
            failed.channel_id, refusal_notice(failed), fallback=failed.response_url
        )
        if delivered is None:
            await self._w.requests.update(failed.request_id, notice_due="refused", notice_refused_since=now)
        await self.close_card(failed, "not_started")

    async def close_card(self, request: BackupRequest, outcome: CardOutcome) -> None:
        """Brings the cards of the request to their state once DCS has answered: the one it was confirmed
        on, through the stored response_url while Slack still takes it, and — when an approver started
        it — the approval request in the channel, by ``chat.update``."""
        by = request.approved_by or request.confirmed_by or request.requester_id
        closed = CardClosed(request, outcome, by)
        # Through the deliveries' notifier: the background work's is fenced by the lease.
        notifier = self._deliveries.notifier
        if request.approved_by is not None and request.approval_message_ts is not None:
            await notifier.update_message(request.channel_id, request.approval_message_ts, closed)
        if request.response_url is not None and response_url_usable(request, self._w.clock.now()):
            await notifier.reply(request.response_url, closed, replace_original=True)


def refusal_notice(request: BackupRequest) -> BackupNotStarted:
    """The notice of a request DCS refused, from what the request keeps of the refusal."""
    failure = ApiFailure(
        status=request.error_status or 0,
        error_code=request.error_code,
        error_msg=request.error_msg or "",
        hint=request.error_hint or "",
        request_id=request.error_request_id,
    )
    return BackupNotStarted(request, failure)
