"""Housekeeping, in the background: cards nobody answered expire, and what the bot no longer needs goes.

- The **expiry sweep** (every poll interval): a request still ``pending`` or ``awaiting_approval`` past its
  ``expires_at`` becomes ``expired``, audited as EXPIRED with no user (the clock did it). The requester is
  told through the stored response_url while Slack still takes it (30 minutes after it was issued); later
  the sweep stays quiet about the card. An approval request in the channel is updated in place to say it
  expired (its buttons gone), and the requester is told in its thread, however long ago they asked. A
  card Slack would no longer let the bot change keeps its buttons until someone presses one; such a click
  closes it.
- **Pruning** (at start, then hourly): requests in a final state and the watch's memory older than the
  retention (``BOT_RETENTION_DAYS``), and the Events API deliveries seen more than a day ago (Slack
  redelivers within minutes). The audit trail is kept.

Every step is an atomic store operation, so a click racing the sweep either wins or is told the request
expired, never both; a failure with one request is logged and does not stop the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.flow.context import about
from bot.core.flow.notices import response_url_usable
from bot.core.ports import AuditLog, Clock, EventDeliveries, Notifier, RequestStore, WatchStore
from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestEvent, RequestState
from bot.core.rules.messages import ApprovalExpired, CardClosed

log = logging.getLogger(__name__)

#: How long an Events API delivery is remembered: far beyond Slack's last retry (minutes after the first).
DELIVERY_MEMORY = timedelta(days=1)


@dataclass(frozen=True)
class HousekeepingOptions:
    sweep_every: float
    retention: timedelta
    prune_every: float = 3600.0
    # Requests expired per sweep at most; the rest wait for the next one.
    batch: int = 100


@dataclass(frozen=True)
class SweepReport:
    expired: list[str]
    told: list[str]


@dataclass(frozen=True)
class PruneReport:
    requests: int
    watched: int
    deliveries: int = 0


class Housekeeping:
    def __init__(
        self,
        *,
        requests: RequestStore,
        watch: WatchStore,
        notifier: Notifier,
        audit: AuditLog,
        clock: Clock,
        options: HousekeepingOptions,
        deliveries: EventDeliveries | None = None,
    ) -> None:
        self._deliveries = deliveries
        self._requests = requests
        self._watch = watch
        self._notifier = notifier
        self._audit = audit
        self._clock = clock
        self._options = options

    async def run(self, stop: asyncio.Event) -> None:
        """Sweeps every ``sweep_every`` seconds and prunes every ``prune_every`` (first right away) until
        ``stop`` is set; a failed round is logged and tried again next time."""
        loop = asyncio.get_running_loop()
        prune_at = loop.time()
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("expiring unanswered requests failed; trying again next interval")
            if loop.time() >= prune_at:
                prune_at = loop.time() + self._options.prune_every
                try:
                    await self.prune()
                except Exception:
                    log.exception("pruning old requests and watch memory failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._options.sweep_every)

    async def sweep(self) -> SweepReport:
        now = self._clock.now()
        expired: list[str] = []
        told: list[str] = []
        for request in await self._requests.past_expiry(now, limit=self._options.batch):
            try:
                outcome = await self._expire(request, now)
            except Exception:
                log.exception("could not expire request %s; trying again next interval", request.request_id)
                continue
            if outcome is not None:
                expired.append(request.request_id)
                if outcome:
                    told.append(request.request_id)
        return SweepReport(expired, told)

    async def _expire(self, request: BackupRequest, now: datetime) -> bool | None:
        """Expires ``request``; None when something else changed it first, else whether the requester was
        told."""
        # "expired" makes this a compare-and-set on the expiry too: a click that asked for approval just
        # before (a new expires_at) wins.
        changed = await self._requests.transition(
            request.request_id, RequestEvent.EXPIRE, now=now, expired=True
        )
        if changed is None:
            return None
        await self._audit.record(
            about(
                changed,
                AuditKind.EXPIRED,
                None,
                detail={"expires_at": request.expires_at.isoformat(), "was": str(request.state)},
            )
        )
        told = False
        if request.state == RequestState.AWAITING_APPROVAL:
            told = await self._close_approval_request(changed)
        url = request.response_url
        if url is None or not response_url_usable(request, now):
            return told
        notice = CardClosed(changed, "expired", request.requester_id)
        return await self._notifier.reply(url, notice, replace_original=True) or told

    async def _close_approval_request(self, request: BackupRequest) -> bool:
        """Updates the expired approval request in the channel (its buttons go) and tells the requester in
        its thread; whether they were told. Slack refusing either leaves the rest to go on: a click on a
        button left behind is answered that the request expired."""
        ts = request.approval_message_ts
        if ts is None:
            return False  # the bot could not post it in the channel: the requester's card is all there is
        closed = CardClosed(request, "expired", request.requester_id)
        updated = await self._notifier.update_message(request.channel_id, ts, closed)
        if updated.outcome != "updated":
            log.warning(
                "could not update the expired approval request of %s (%s)",
                request.request_id,
                updated.outcome,
            )
        thread_ts = ts if updated.outcome != "gone" else None
        told = await self._notifier.announce(
            request.channel_id, ApprovalExpired(request), thread_ts=thread_ts
        )
        return told is not None

    async def prune(self) -> PruneReport:
        now = self._clock.now()
        before = now - self._options.retention
        report = PruneReport(
            requests=await self._requests.prune(before),
            watched=await self._watch.forget(before),
            deliveries=0 if self._deliveries is None else await self._deliveries.prune(now - DELIVERY_MEMORY),
        )
        if report.requests or report.watched:
            log.info(
                "pruned %d finished request(s) and %d remembered backup(s) older than %s",
                report.requests,
                report.watched,
                before.isoformat(timespec="seconds"),
            )
        return report
