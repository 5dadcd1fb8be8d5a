"""Follows every backup started through the bot to its end, and watches the backup estate.

One poll cycle lists the backup records of each instance that has followed or watched backups — one
call per instance, however many backups — concurrently with a bound. Everything it must remember lives
in the database, so a restarted bot carries on where the old one stopped and announces each outcome once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.errors import DcsApiError, DcsError
from bot.core.ports import AuditLog, Clock, DcsApi, Notifier, RequestStore, WatchStore
from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestEvent, RequestState
from bot.core.rules.following import Ended, GiveUp, StillRunning, duration_of, judge
from bot.core.rules.instances import BackupRecord, Instance
from bot.core.rules.messages import (
    BackupFinished,
    BackupsRecovered,
    BackupsStale,
    Notice,
    TrackingAbandoned,
    WatchedBackupEnded,
)
from bot.core.rules.policy import Policy
from bot.core.rules.watching import (
    Recovered,
    StaleAlert,
    WatchTarget,
    staleness_change,
    watch_targets,
    watched_outcomes,
)

log = logging.getLogger(__name__)

# A notice Slack keeps refusing is given up after this many cycles, so one bad channel cannot wedge tracking.
_NOTICE_ATTEMPTS = 5


@dataclass(frozen=True)
class TrackerOptions:
    interval: float
    give_up_after: timedelta = timedelta(hours=2)
    concurrency: int = 8
    instance_refresh: timedelta = timedelta(minutes=5)
    max_backoff: float = 300.0
    # DCS keeps only the 24 newest records of an instance, so one page shows all of them.
    page_size: int = 50


@dataclass(frozen=True)
class CycleReport:
    polled: list[str]


@dataclass
class _Backoff:
    until: datetime
    failures: int


class Tracker:
    def __init__(
        self,
        *,
        dcs: DcsApi,
        requests: RequestStore,
        watch: WatchStore,
        notifier: Notifier,
        audit: AuditLog,
        policy: Callable[[], Policy],
        clock: Clock,
        options: TrackerOptions,
    ) -> None:
        self._dcs = dcs
        self._requests = requests
        self._watch = watch
        self._notifier = notifier
        self._audit = audit
        self._policy = policy
        self._clock = clock
        self._options = options
        self._backoff: dict[str, _Backoff] = {}
        self._instances: list[Instance] | None = None
        self._instances_at: datetime | None = None
        self._instances_backoff: _Backoff | None = None
        self._reported_unknown: set[tuple[str, str]] = set()
        self._undelivered: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.cycle()
            except Exception:
                log.exception("tracking cycle failed; trying again next interval")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._options.interval)

    async def cycle(self) -> CycleReport:
        now = self._clock.now()
        followed = await self._requests.in_states(RequestState.SUBMITTED)
        targets = await self._targets(now)
        wanted = sorted({r.instance_id for r in followed} | {t.instance_id for t in targets})
        due = [instance_id for instance_id in wanted if self._is_due(instance_id, now)]
        pages = await self._fetch(due)
        for request in followed:
            records = pages.get(request.instance_id) or []
            record = next((r for r in records if r.backup_id == request.backup_id), None)
            await self._follow(request, record, now)
        for target in targets:
            page = pages.get(target.instance_id)
            if page is not None:
                await self._watch_target(target, page, now)
        return CycleReport(polled=due)

    # --- polling --------------------------------------------------------------------------------------

    def _is_due(self, instance_id: str, now: datetime) -> bool:
        backoff = self._backoff.get(instance_id)
        return backoff is None or now >= backoff.until

    async def _fetch(self, instance_ids: Sequence[str]) -> dict[str, list[BackupRecord] | None]:
        limit = asyncio.Semaphore(self._options.concurrency)

        async def one(instance_id: str) -> list[BackupRecord] | None:
            async with limit:
                return await self._list(instance_id)

        results = await asyncio.gather(*(one(instance_id) for instance_id in instance_ids))
        return dict(zip(instance_ids, results, strict=True))

    async def _list(self, instance_id: str) -> list[BackupRecord] | None:
        try:
            page = await self._dcs.list_backups(instance_id, limit=self._options.page_size)
        except DcsError as error:
            # Retry-After counts from the answer, not from when the cycle began: a slow failing call
            # (up to DCS_TIMEOUT) would otherwise eat into the pause DCS asked for.
            self._back_off(instance_id, self._clock.now(), error)
            return None
        self._backoff.pop(instance_id, None)
        return list(page.records)

    def _back_off(self, instance_id: str, now: datetime, error: DcsError) -> None:
        backoff = self._next_backoff(self._backoff.get(instance_id), now, error)
        self._backoff[instance_id] = backoff
        delay = (backoff.until - now).total_seconds()
        log.warning("listing backups of %s failed (%s); next try in %.1f s", instance_id, error, delay)

    def _next_backoff(self, previous: _Backoff | None, now: datetime, error: DcsError) -> _Backoff:
        failures = previous.failures + 1 if previous is not None else 1
        delay = min(self._options.max_backoff, self._options.interval * 2 ** (failures - 1))
        if isinstance(error, DcsApiError) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return _Backoff(now + timedelta(seconds=delay), failures)

    # --- backups started through the bot --------------------------------------------------------------

    async def _follow(self, request: BackupRequest, record: BackupRecord | None, now: datetime) -> None:
        verdict = judge(request, record, now, self._options.give_up_after)
        match verdict:
            case StillRunning(status):
                if verdict.status_is_unknown and status is not None:
                    self._log_unknown(request, status)
                if status is not None and status != request.backup_status:
                    await self._requests.update(request.request_id, backup_status=status)
            case Ended(final, duration):
                notice = BackupFinished(request.with_state(RequestState.FINISHED), final, duration)
                if not await self._tell_thread(request, notice):
                    return
                finished = await self._requests.transition(
                    request.request_id,
                    RequestEvent.FINISH,
                    now=now,
                    backup_status=final.status,
                    finished_at=now,
                )
                if finished is None:
                    return
                await self._record_outcome(finished, final.status, {"duration_seconds": duration})
            case GiveUp(followed):
                if not await self._tell_thread(request, TrackingAbandoned(request, followed)):
                    return
                abandoned = await self._requests.transition(request.request_id, RequestEvent.ABANDON, now=now)
                if abandoned is None:
                    return
                await self._record_outcome(abandoned, "abandoned", {"followed_seconds": followed})

    async def _tell_thread(self, request: BackupRequest, notice: BackupFinished | TrackingAbandoned) -> bool:
        # Without a channel message (the bot could not post there) the response_url is the only way back.
        fallback = request.response_url if request.message_ts is None else None
        return await self._deliver(
            f"request {request.request_id}",
            request.channel_id,
            notice,
            thread_ts=request.message_ts,
            fallback=fallback,
        )

    async def _deliver(
        self,
        key: str,
        channel_id: str,
        notice: Notice,
        *,
        thread_ts: str | None = None,
        fallback: str | None = None,
    ) -> bool:
        """Posts ``notice``; True once it is settled. The state change it reports is recorded only after
        that, so a notice Slack did not take is tried again next cycle — until it has failed
        ``_NOTICE_ATTEMPTS`` times, when it is given up (and logged) rather than retried forever."""
        delivered = await self._notifier.announce(
            channel_id, notice, thread_ts=thread_ts, fallback_response_url=fallback
        )
        if delivered is not None:
            self._undelivered.pop(key, None)
            return True
        attempts = self._undelivered.get(key, 0) + 1
        if attempts >= _NOTICE_ATTEMPTS:
            self._undelivered.pop(key, None)
            log.error("giving up on the notice for %s after %d failed attempts", key, attempts)
            return True
        self._undelivered[key] = attempts
        return False

    async def _record_outcome(self, request: BackupRequest, outcome: str, detail: dict[str, object]) -> None:
        await self._audit.record(
            AuditEntry(
                AuditKind.OUTCOME,
                user_id=request.requester_id,
                channel_id=request.channel_id,
                request_id=request.request_id,
                instance_id=request.instance_id,
                instance_name=request.instance_name,
                backup_id=request.backup_id,
                rule=request.rule,
                outcome=outcome,
                detail=detail,
            )
        )

    def _log_unknown(self, request: BackupRequest, status: str) -> None:
        key = (request.backup_id or "", status)
        if key not in self._reported_unknown:
            self._reported_unknown.add(key)
            log.warning(
                "backup %s has the undocumented status %r; still following it", request.backup_id, status
            )

    # --- the watched estate ---------------------------------------------------------------------------

    async def _targets(self, now: datetime) -> list[WatchTarget]:
        watches = self._policy().watch
        if not watches:
            return []
        stale = self._instances_at is None or now - self._instances_at >= self._options.instance_refresh
        backoff = self._instances_backoff
        if (self._instances is None or stale) and (backoff is None or now >= backoff.until):
            try:
                self._instances = await self._all_instances()
                self._instances_at = now
                self._instances_backoff = None
            except DcsError as error:
                answered = self._clock.now()
                self._instances_backoff = self._next_backoff(backoff, answered, error)
                delay = (self._instances_backoff.until - answered).total_seconds()
                log.warning(
                    "could not refresh the watched instances (%s); using the last known list, "
                    "next try in %.1f s",
                    error,
                    delay,
                )
        return watch_targets(watches, self._instances or [])

    async def _all_instances(self) -> list[Instance]:
        instances: list[Instance] = []
        while True:
            page = await self._dcs.list_instances(limit=1000, offset=len(instances))
            instances += page.instances
            if not page.instances or len(instances) >= page.total:
                return instances

    async def _watch_target(self, target: WatchTarget, records: list[BackupRecord], now: datetime) -> None:
        state = await self._watch.state(target.channel_id, target.instance_id, target.instance_name, now)
        finals = [r.backup_id for r in records if r.is_final]
        seen = await self._watch.seen(target.channel_id, finals)
        for outcome in watched_outcomes(target, records, state.watching_since, seen):
            record, announce = outcome.record, outcome.announce
            requester = None
            if announce:
                request = await self._requests.by_backup_id(record.backup_id)
                requester = request.requester_id if request else None
                # Its own thread already carries the outcome in that channel — unless the bot gave up
                # following it, and then this is the only place its end is told.
                announce = (
                    request is None
                    or request.channel_id != target.channel_id
                    or request.state == RequestState.ABANDONED
                )
            if announce:
                notice = WatchedBackupEnded(target.instance_name, record, duration_of(record), requester)
                if not await self._deliver(
                    f"watch {target.channel_id} {record.backup_id}", target.channel_id, notice
                ):
                    continue
            remembered = await self._watch.remember(
                target.channel_id,
                record.backup_id,
                target.instance_id,
                record.status,
                announced=announce,
                now=now,
            )
            if remembered and announce:
                await self._audit_watch(target, record.status, record.backup_id)
        await self._check_staleness(target, records, now, state.stale_since)

    async def _check_staleness(
        self, target: WatchTarget, records: list[BackupRecord], now: datetime, stale_since: datetime | None
    ) -> None:
        change = staleness_change(target, records, now, stale_since)
        key = f"staleness {target.channel_id} {target.instance_id}"
        if isinstance(change, StaleAlert):
            hours = (target.stale_after or timedelta()).total_seconds() / 3600
            notice: Notice = BackupsStale(
                target.instance_name, target.instance_id, hours, change.last_success
            )
            if not await self._deliver(key, target.channel_id, notice):
                return
            changed = await self._watch.set_stale(
                target.channel_id, target.instance_id, since=now, expected=None
            )
            outcome = "stale"
        elif isinstance(change, Recovered):
            notice = BackupsRecovered(target.instance_name, target.instance_id, change.last_success)
            if not await self._deliver(key, target.channel_id, notice):
                return
            changed = await self._watch.set_stale(
                target.channel_id, target.instance_id, since=None, expected=stale_since
            )
            outcome = "recovered"
        else:
            return
        if changed:
            await self._audit_watch(target, outcome, None)

    async def _audit_watch(self, target: WatchTarget, outcome: str, backup_id: str | None) -> None:
        await self._audit.record(
            AuditEntry(
                AuditKind.NOTICE,
                channel_id=target.channel_id,
                instance_id=target.instance_id,
                instance_name=target.instance_name,
                backup_id=backup_id,
                outcome=outcome,
                detail={"watch": True},
            )
        )
