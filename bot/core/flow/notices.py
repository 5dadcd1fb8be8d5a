"""Posting the bot's notices, retried within a time budget rather than a number of attempts.

A notice Slack does not take is tried again on later cycles until :data:`NOTICE_BUDGET` has passed since
its first refusal. Then it is given up: recorded in the audit trail as a ``notice`` entry with outcome
``lost`` (never as delivered), logged once, and — for a notice about a request — sent to the person through
the request's response_url while that still works (Slack honours one for 30 minutes after the click).

For a request the start of the budget is kept in the database (``notice_refused_since``), so a restart
does not begin it anew; for the watched estate it is kept in memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from bot.core.flow.context import about
from bot.core.ports import AuditLog, Clock, Delivered, Notifier, RequestStore
from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.core.rules.messages import Notice, NoticeCopy

log = logging.getLogger(__name__)

# Long enough for Slack's usual incidents; short enough that a notice refused soon after the click can
# still reach the person through the click's response_url, which Slack honours for 30 minutes.
NOTICE_BUDGET = timedelta(minutes=20)
RESPONSE_URL_LIFETIME = timedelta(minutes=30)

DeliveryOutcome = Literal["delivered", "pending", "lost"]


def response_url_issued_at(request: BackupRequest) -> datetime:
    """When the request's stored response_url was issued, or a moment before (never after): the command's
    comes with the request; a confirmation replaces it with the click's — at ``submitted_at``, or, when it
    asked for approval, at that transition (``updated_at`` while the request waits). An approver's click
    keeps the requester's, issued before the approval, after the request was made."""
    if request.state == RequestState.AWAITING_APPROVAL and request.updated_at is not None:
        return request.updated_at
    if request.approved_by is None and request.submitted_at is not None:
        return request.submitted_at
    return request.created_at


def response_url_usable(request: BackupRequest, now: datetime) -> bool:
    """Whether Slack still takes posts to the request's response_url (it has one, and it is young enough)."""
    return request.response_url is not None and now - response_url_issued_at(request) < RESPONSE_URL_LIFETIME


@dataclass(frozen=True)
class Delivery:
    """What became of one try: ``delivered`` (with the message's ``ts`` when it went to the channel),
    ``pending`` (refused, within the budget: try again next cycle) or ``lost`` (given up)."""

    outcome: DeliveryOutcome
    ts: str | None = None

    @property
    def settled(self) -> bool:
        return self.outcome != "pending"


class Deliveries:
    def __init__(
        self,
        notifier: Notifier,
        requests: RequestStore,
        audit: AuditLog,
        clock: Clock,
        budget: timedelta = NOTICE_BUDGET,
    ) -> None:
        self._notifier = notifier
        self._requests = requests
        self._audit = audit
        self._clock = clock
        self._budget = budget
        self._watch_refused_since: dict[str, datetime] = {}
        self._surprises: dict[str, str] = {}

    @property
    def budget(self) -> timedelta:
        return self._budget

    @property
    def notifier(self) -> Notifier:
        """The notifier these deliveries go through (the fenced one for the background work)."""
        return self._notifier

    async def post(
        self,
        channel_id: str,
        notice: Notice,
        *,
        thread_ts: str | None = None,
        fallback: str | None = None,
        broadcast: bool = False,
    ) -> Delivered | None:
        """One post; None when Slack did not take it — whatever went wrong on the way. ``broadcast``: a
        thread reply is also shown in the channel."""
        try:
            delivered = await self._notifier.announce(
                channel_id, notice, thread_ts=thread_ts, fallback_response_url=fallback, broadcast=broadcast
            )
        except Exception as error:
            # Logged with its stack once while it repeats, not on every cycle of the budget.
            text = f"{type(error).__name__}: {error}"
            first = self._surprises.get(channel_id) != text
            self._surprises[channel_id] = text
            what = type(notice).__name__
            if first:
                log.error(
                    "posting a %s to %s failed unexpectedly (%s)", what, channel_id, text, exc_info=error
                )
            else:
                log.debug("posting a %s to %s still fails (%s)", what, channel_id, text)
            return None
        if delivered is not None:
            self._surprises.pop(channel_id, None)
        return delivered

    async def about_request(
        self,
        request: BackupRequest,
        notice: Notice,
        what: str,
        *,
        thread_ts: str | None = None,
        fallback: str | None = None,
        broadcast: bool = False,
    ) -> Delivery:
        """Tries ``notice`` (called ``what`` in the audit trail) about ``request`` once, within the budget
        that began when Slack first refused it (``request.notice_refused_since``, kept up to date here)."""
        delivered = await self.post(
            request.channel_id, notice, thread_ts=thread_ts, fallback=fallback, broadcast=broadcast
        )
        since = request.notice_refused_since
        if delivered is not None:
            if since is not None:
                await self._requests.update(request.request_id, notice_refused_since=None)
            return Delivery("delivered", delivered.ts)
        now = self._clock.now()
        if since is None:
            since = now
            await self._requests.update(request.request_id, notice_refused_since=since)
        if now - since < self._budget:
            return Delivery("pending")
        copy = await self._copy_to_person(request, notice, now)
        await self._requests.update(request.request_id, notice_refused_since=None)
        await self._audit.record(
            about(
                request,
                AuditKind.NOTICE,
                request.requester_id,
                outcome="lost",
                detail={"notice": what, "refused_since": since.isoformat(), "response_url": copy},
            )
        )
        log.error(
            "gave up on the %s notice of request %s in %s: Slack refused it for %s (response_url: %s)",
            what,
            request.request_id,
            request.channel_id,
            _minutes(now - since),
            copy,
        )
        return Delivery("lost")

    async def about_watch(self, key: str, channel_id: str, notice: Notice, lost: AuditEntry) -> Delivery:
        """Tries a notice of the watched estate once; given up after the budget, ``lost`` (an entry about
        it) is recorded with outcome ``lost``."""
        delivered = await self.post(channel_id, notice)
        if delivered is not None:
            self._watch_refused_since.pop(key, None)
            return Delivery("delivered", delivered.ts)
        now = self._clock.now()
        since = self._watch_refused_since.setdefault(key, now)
        if now - since < self._budget:
            return Delivery("pending")
        del self._watch_refused_since[key]
        detail = lost.detail | {"notice": lost.outcome, "refused_since": since.isoformat()}
        await self._audit.record(replace(lost, outcome="lost", detail=detail))
        log.error("gave up on the notice for %s: Slack refused it for %s", key, _minutes(now - since))
        return Delivery("lost")

    async def _copy_to_person(self, request: BackupRequest, notice: Notice, now: datetime) -> str:
        """Sends a notice given up to the person through the request's response_url; what came of it."""
        url = request.response_url
        if url is None:
            return "none"
        if not response_url_usable(request, now):
            return "expired"
        try:
            taken = await self._notifier.reply(url, NoticeCopy(notice, request.channel_id))
        except Exception:
            log.exception("sending request %s's notice through its response_url failed", request.request_id)
            taken = False
        return "taken" if taken else "refused"


def _minutes(span: timedelta) -> str:
    seconds = span.total_seconds()
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.1f} s"
