"""Follows every backup started through the bot to its end, looks for the backups of submissions whose
outcome is unknown, and watches the backup estate.

One poll cycle (every ``interval``) lists the backup records of each instance that has followed or checked
backups — one call per instance, however many backups — concurrently with a bound. The watched estate is
polled on its own, slower ``watch_interval`` (``BOT_WATCH_INTERVAL``): a watched instance that also has a
followed or checked backup is served by the page its backups are listed with, on every cycle; a watched-only
instance is listed once per watch interval, and after its first listing the listings of the estate spread
over the interval rather than coming all at once. Every DCS call the tracker makes takes a token first from
the :class:`~bot.core.flow.call_budget.CallBudget` of the instance's cloud (one per cloud,
:class:`~bot.core.flow.call_budget.CloudBudgets`), the bot's own backups before the watch, so a big estate
is polled more slowly instead of hammering DCS: a cycle lists no more watched-only instances of a cloud than
its budget has left in one interval after its followed ones (at least one, so the watch never stops), and
the rest wait for later cycles, never listed ones first, then the most overdue. Each cloud's calls are
made on their own, with their own bound on how many run at once, so a cloud that is busy or hangs never
slows another cloud's polling.

Everything it must remember lives in the database, so a restarted bot carries on where the old one stopped
and announces each outcome once.

Each request and each watch target is handled on its own: one whose handling fails (an odd record, a
notifier surprise, a store error) is logged once with what it was about — expected DCS errors without a
traceback, anything else with one — and tried again next cycle, while the others go on. A notice Slack
refuses is tried again on later cycles within a time budget (:mod:`bot.core.flow.notices`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from bot.core.errors import DcsApiError, DcsError
from bot.core.flow.call_budget import CloudBudgets, Priority
from bot.core.flow.context import about, client_of
from bot.core.flow.living import UPDATE_SPACING, LiveMessages
from bot.core.flow.notices import NOTICE_BUDGET, Deliveries
from bot.core.flow.submission import refusal_notice
from bot.core.ports import AuditLog, Clock, CloudMap, DcsApi, DcsClouds, Notifier, RequestStore, WatchStore
from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestEvent, RequestState
from bot.core.rules.following import Ended, GiveUp, StillRunning, duration_of, judge
from bot.core.rules.instances import BackupRecord, Instance
from bot.core.rules.living import shown_state
from bot.core.rules.messages import (
    BackupFinished,
    BackupsRecovered,
    BackupsStale,
    BackupStarted,
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

_T = TypeVar("_T")


class Reconciler(Protocol):
    """Looks for the backup of a request in ``checking`` (:class:`bot.core.flow.recovery.Recovery`)."""

    async def reconcile(
        self, request: BackupRequest, records: Sequence[BackupRecord] | None, now: datetime
    ) -> None: ...


@dataclass(frozen=True)
class TrackerOptions:
    interval: float
    # Seconds between listings of a watched-only instance; None lists the watched estate every cycle.
    watch_interval: float | None = None
    give_up_after: timedelta = timedelta(hours=2)
    concurrency: int = 8
    instance_refresh: timedelta = timedelta(minutes=5)
    max_backoff: float = 300.0
    # DCS keeps only the 24 newest records of an instance, so one page shows all of them.
    page_size: int = 50
    notice_budget: timedelta = NOTICE_BUDGET
    # The least time between two updates of messages in one channel.
    update_spacing: timedelta = UPDATE_SPACING


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
        dcs: DcsApi | None = None,
        clouds: DcsClouds | None = None,
        requests: RequestStore,
        watch: WatchStore,
        notifier: Notifier,
        audit: AuditLog,
        policy: Callable[[], Policy],
        clock: Clock,
        options: TrackerOptions,
        reconciler: Reconciler | None = None,
        budgets: CloudBudgets | None = None,
    ) -> None:
        """Without a ``reconciler`` requests in ``checking`` are left alone; without ``budgets`` the
        tracker's DCS calls are bounded only by ``options.concurrency`` (in each cloud). The DCS is
        ``clouds``, or the one cloud ``dcs``. Each instance is listed in its own cloud; each cloud's
        instance list is refreshed and backed off on its own, so a cloud that fails keeps its last known
        list and never holds up the others."""
        if clouds is None:
            if dcs is None:
                raise TypeError("Tracker needs clouds or dcs")
            clouds = CloudMap.single(dcs)
        self._clouds = clouds
        # The cloud of each instance the tracker lists (from its requests and watch targets).
        self._cloud_of: dict[str, str | None] = {}
        self._requests = requests
        self._watch = watch
        self._notifier = notifier
        self._audit = audit
        self._policy = policy
        self._clock = clock
        self._options = options
        self._backoff: dict[str, _Backoff] = {}
        # Per cloud: its last known instances, when they were listed, and its backoff after a failure.
        self._instances: dict[str, list[Instance]] = {}
        self._instances_at: dict[str, datetime] = {}
        self._instances_backoff: dict[str, _Backoff] = {}
        self._reconciler = reconciler
        self._budgets = budgets
        # When each watched instance is next due for a listing of its own (absent: due now).
        self._watch_due: dict[str, datetime] = {}
        self._deliveries = Deliveries(notifier, requests, audit, clock, options.notice_budget)
        self._live = LiveMessages(notifier, clock, spacing=options.update_spacing)
        self._reported_unknown: set[tuple[str, str]] = set()
        # What failed last time for each request or target, so a failure that repeats is logged once.
        self._failing: dict[str, str] = {}

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
        checking = await self._requests.in_states(RequestState.CHECKING) if self._reconciler else []
        owing = await self._requests.owing_notices()
        targets = await self._isolated("the watched instances", self._targets(now)) or []
        self._cloud_of = {t.instance_id: t.cloud for t in targets}
        self._cloud_of |= {r.instance_id: r.cloud for r in (*followed, *checking)}
        wanted = {r.instance_id for r in followed} | {r.instance_id for r in checking}
        due = [instance_id for instance_id in sorted(wanted) if self._is_due(instance_id, now)]
        watched = self._watch_due_now({t.instance_id for t in targets} - wanted, due, now)
        pages = await self._fetch(due, watched)
        self._schedule_watch(watched, pages, now)
        due += watched
        if self._reconciler is not None:
            for request in checking:
                look = self._reconciler.reconcile(request, pages.get(request.instance_id), now)
                await self._isolated(_about(request), look)
        for request in followed:
            records = pages.get(request.instance_id) or []
            record = next((r for r in records if r.backup_id == request.backup_id), None)
            await self._isolated(_about(request), self._follow(request, record, now))
        for request in owing:
            if request.state == RequestState.API_FAILED and request.notice_due == "refused":
                await self._isolated(_about(request), self._tell_refusal(request))
        for target in targets:
            page = pages.get(target.instance_id)
            if page is not None:
                key = f"watch of {target.instance_name} ({target.instance_id}) in {target.channel_id}"
                await self._isolated(key, self._watch_target(target, page, now))
        await self._isolated("updating channel messages", self._live.flush())
        return CycleReport(polled=due)

    async def _isolated(self, key: str, work: Awaitable[_T]) -> _T | None:
        """Runs one request's or target's share of the cycle; a failure is logged (once while it repeats)
        and leaves the rest of the cycle to go on. None when it failed."""
        try:
            result = await work
        except Exception as error:
            self._log_failure(key, error)
            return None
        if self._failing.pop(key, None) is not None:
            log.info("%s is handled again", key)
        return result

    def _log_failure(self, key: str, error: Exception) -> None:
        text = f"{type(error).__name__}: {error}"
        repeated = self._failing.get(key) == text
        self._failing[key] = text
        if repeated:
            log.debug("%s still fails (%s); trying again next cycle", key, text)
        elif isinstance(error, DcsError):
            log.warning("%s failed (%s); trying again next cycle", key, text)
        else:
            log.error("%s failed (%s); trying again next cycle", key, text, exc_info=error)

    # --- polling --------------------------------------------------------------------------------------

    def _is_due(self, instance_id: str, now: datetime) -> bool:
        backoff = self._backoff.get(instance_id)
        return backoff is None or now >= backoff.until

    def _cloud_name(self, instance_id: str) -> str:
        """The cloud an instance is listed in; a request from before clouds were recorded is the first's."""
        cloud = self._cloud_of.get(instance_id)
        return cloud if cloud is not None else self._clouds.names[0]

    def _watch_due_now(self, watched_only: set[str], followed: Sequence[str], now: datetime) -> list[str]:
        """The watched-only instances this cycle lists: those due — never listed first, then the most
        overdue — in each cloud as many as its budget has left in one interval after its ``followed``
        instances (at least one)."""
        if self._options.watch_interval is None:
            return [i for i in sorted(watched_only) if self._is_due(i, now)]
        for gone in self._watch_due.keys() - watched_only:
            del self._watch_due[gone]
        due = [i for i in watched_only if self._watch_due.get(i, now) <= now and self._is_due(i, now)]
        # Never listed first, then the most overdue.
        due.sort(key=lambda i: (i in self._watch_due, self._watch_due.get(i, now), i))
        if self._budgets is not None:
            per_interval = math.floor(self._budgets.rate * self._options.interval)
            spare = {cloud: per_interval - len(ids) for cloud, ids in self._by_cloud(followed).items()}
            due = [
                instance_id
                for cloud, ids in self._by_cloud(due).items()
                for instance_id in ids[: max(1, spare.get(cloud, per_interval))]
            ]
        return sorted(due)

    def _by_cloud(self, instance_ids: Sequence[str]) -> dict[str, list[str]]:
        """``instance_ids`` by their cloud, each cloud's in their order."""
        grouped: dict[str, list[str]] = {}
        for instance_id in instance_ids:
            grouped.setdefault(self._cloud_name(instance_id), []).append(instance_id)
        return grouped

    def _schedule_watch(
        self, listed: Sequence[str], pages: dict[str, list[BackupRecord] | None], now: datetime
    ) -> None:
        """Sets when each watched-only instance listed this cycle is due again. An instance listed for the
        first time is due again within one interval, at its place in the estate, so that the listings
        spread over the interval from then on instead of all coming together."""
        interval = self._options.watch_interval
        if interval is None:
            return
        fresh = [i for i in listed if i not in self._watch_due and pages.get(i) is not None]
        for place, instance_id in enumerate(fresh, start=1):
            self._watch_due[instance_id] = now + timedelta(seconds=interval * place / len(fresh))
        for instance_id in listed:
            if instance_id not in fresh and pages.get(instance_id) is not None:
                self._watch_due[instance_id] = now + timedelta(seconds=interval)

    async def _fetch(
        self, followed: Sequence[str], watched: Sequence[str]
    ) -> dict[str, list[BackupRecord] | None]:
        """The backup pages of the ``followed`` and ``watched`` instances, each cloud's listed on its own:
        its followed ones first, under its own budget and its own bound on calls at once."""
        followed_of, watched_of = self._by_cloud(followed), self._by_cloud(watched)
        clouds = list(dict.fromkeys([*followed_of, *watched_of]))
        pages: dict[str, list[BackupRecord] | None] = {}
        for listed in await asyncio.gather(
            *(
                self._fetch_in(cloud, followed_of.get(cloud, []), watched_of.get(cloud, []))
                for cloud in clouds
            )
        ):
            pages |= listed
        return pages

    async def _fetch_in(
        self, cloud: str, followed: Sequence[str], watched: Sequence[str]
    ) -> dict[str, list[BackupRecord] | None]:
        limit = asyncio.Semaphore(self._options.concurrency)
        budget = self._budgets.of(cloud) if self._budgets is not None else None

        async def one(instance_id: str, priority: Priority) -> list[BackupRecord] | None:
            async with limit:
                if budget is not None:
                    await budget.acquire(priority)
                return await self._isolated(f"listing the backups of {instance_id}", self._list(instance_id))

        pages: dict[str, list[BackupRecord] | None] = {}
        for instance_ids, priority in ((followed, Priority.FOLLOW), (watched, Priority.WATCH)):
            results = await asyncio.gather(*(one(instance_id, priority) for instance_id in instance_ids))
            pages |= dict(zip(instance_ids, results, strict=True))
        return pages

    async def _list(self, instance_id: str) -> list[BackupRecord] | None:
        try:
            dcs = client_of(self._clouds, self._cloud_of.get(instance_id))
            page = await dcs.list_backups(instance_id, limit=self._options.page_size)
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
        if request.notice_due == "started":
            started = await self._tell_start(request)
            if started is None:
                return
            request = started
        verdict = judge(request, record, now, self._options.give_up_after)
        match verdict:
            case StillRunning(status):
                if verdict.status_is_unknown and status is not None:
                    self._log_unknown(request, status)
                if status is not None and status != request.backup_status:
                    await self._requests.update(request.request_id, backup_status=status)
                progress = record.progress if record is not None else None
                await self._show(request, BackupStarted(request, status=status, progress=progress))
            case Ended(final, duration):
                ended = request.with_state(RequestState.FINISHED)
                await self._show(ended, BackupStarted(ended, final=final, duration_seconds=duration))
                notice = BackupFinished(ended, final, duration)
                delivery = await self._tell_thread(
                    request, notice, "outcome", broadcast=final.status != "succeed"
                )
                if delivery is None:
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
                detail: dict[str, object] = {"duration_seconds": duration, "notice": delivery}
                await self._record_outcome(finished, final.status, detail)
            case GiveUp(followed):
                await self._show(request, BackupStarted(request, abandoned_after=followed))
                delivery = await self._tell_thread(request, TrackingAbandoned(request, followed), "abandoned")
                if delivery is None:
                    return
                abandoned = await self._requests.transition(request.request_id, RequestEvent.ABANDON, now=now)
                if abandoned is None:
                    return
                detail = {"followed_seconds": followed, "notice": delivery}
                await self._record_outcome(abandoned, "abandoned", detail)

    async def _show(self, request: BackupRequest, message: BackupStarted) -> None:
        """Keeps the backup's channel message current (when there is one: the bot may not post there)."""
        if request.message_ts is None:
            return
        if request.backup_status is None:
            # Nothing was seen of it since it was posted: it still shows "waiting to start".
            self._live.known(request.channel_id, request.message_ts, shown_state(BackupStarted(request)))
        final = message.final is not None or message.abandoned_after is not None
        await self._live.show(
            request.channel_id, request.message_ts, message, shows=shown_state(message), final=final
        )

    async def _tell_start(self, request: BackupRequest) -> BackupRequest | None:
        """Tries the start notice Slack refused when DCS accepted the backup; the request as it is once
        that is settled (delivered, or given up), None while it is still being tried."""
        delivery = await self._deliveries.about_request(
            request, BackupStarted(request), "started", fallback=request.response_url
        )
        if not delivery.settled:
            return None
        message_ts = delivery.ts if delivery.ts is not None else request.message_ts
        await self._requests.update(request.request_id, notice_due=None, message_ts=message_ts)
        return replace(request, notice_due=None, notice_refused_since=None, message_ts=message_ts)

    async def _tell_refusal(self, request: BackupRequest) -> None:
        delivery = await self._deliveries.about_request(
            request, refusal_notice(request), "refused", fallback=request.response_url
        )
        if delivery.settled:
            await self._requests.update(request.request_id, notice_due=None)

    async def _tell_thread(
        self,
        request: BackupRequest,
        notice: BackupFinished | TrackingAbandoned,
        what: str,
        *,
        broadcast: bool = False,
    ) -> str | None:
        """Posts the end of a followed backup in its thread (``broadcast``: also shown in the channel);
        "delivered" or "lost" once that is settled, None while it is still being tried."""
        # Without a channel message (the bot could not post there) the response_url is the only way back.
        fallback = request.response_url if request.message_ts is None else None
        thread_ts = request.message_ts
        if thread_ts is not None and self._live.is_gone(request.channel_id, thread_ts):
            # Its channel message was deleted: a reply under it would be seen by nobody.
            thread_ts = None
        delivery = await self._deliveries.about_request(
            request, notice, what, thread_ts=thread_ts, fallback=fallback, broadcast=broadcast
        )
        return delivery.outcome if delivery.settled else None

    async def _record_outcome(self, request: BackupRequest, outcome: str, detail: dict[str, object]) -> None:
        await self._audit.record(
            about(request, AuditKind.OUTCOME, request.requester_id, outcome=outcome, detail=detail)
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
        listed = await asyncio.gather(*(self._instances_of(cloud, now) for cloud in self._clouds.names))
        return watch_targets(watches, [instance for instances in listed for instance in instances])

    async def _instances_of(self, cloud: str, now: datetime) -> list[Instance]:
        """The instances of ``cloud``, refreshed every ``instance_refresh``; the last known ones while the
        cloud fails (it backs off on its own)."""
        at = self._instances_at.get(cloud)
        stale = at is None or now - at >= self._options.instance_refresh
        backoff = self._instances_backoff.get(cloud)
        if (cloud not in self._instances or stale) and (backoff is None or now >= backoff.until):
            try:
                listed = await self._all_instances(cloud)
            except DcsError as error:
                answered = self._clock.now()
                self._instances_backoff[cloud] = self._next_backoff(backoff, answered, error)
                delay = (self._instances_backoff[cloud].until - answered).total_seconds()
                log.warning(
                    "could not refresh the watched instances%s (%s); using the last known list, "
                    "next try in %.1f s",
                    f" of {cloud}" if len(self._clouds.names) > 1 else "",
                    error,
                    delay,
                )
            else:
                self._instances[cloud] = [replace(instance, cloud=cloud) for instance in listed]
                self._instances_at[cloud] = now
                self._instances_backoff.pop(cloud, None)
        return self._instances.get(cloud, [])

    async def _all_instances(self, cloud: str) -> list[Instance]:
        dcs = self._clouds.client(cloud)
        budget = self._budgets.of(cloud) if self._budgets is not None else None
        instances: list[Instance] = []
        while True:
            if budget is not None:
                await budget.acquire(Priority.WATCH)
            page = await dcs.list_instances(limit=1000, offset=len(instances))
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
            delivered = False
            if announce:
                notice = WatchedBackupEnded(
                    target.instance_name, record, duration_of(record), requester, target.cloud
                )
                delivery = await self._deliveries.about_watch(
                    f"watch {target.channel_id} {record.backup_id}",
                    target.channel_id,
                    notice,
                    self._watch_entry(target, record.status, record.backup_id),
                )
                if not delivery.settled:
                    continue
                delivered = delivery.outcome == "delivered"
            remembered = await self._watch.remember(
                target.channel_id,
                record.backup_id,
                target.instance_id,
                record.status,
                announced=delivered,
                now=now,
            )
            if remembered and delivered:
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
                target.instance_name, target.instance_id, hours, change.last_success, target.cloud
            )
            outcome = "stale"
            delivery = await self._deliveries.about_watch(
                key, target.channel_id, notice, self._watch_entry(target, outcome, None)
            )
            if not delivery.settled:
                return
            changed = await self._watch.set_stale(
                target.channel_id, target.instance_id, since=now, expected=None
            )
        elif isinstance(change, Recovered):
            notice = BackupsRecovered(
                target.instance_name, target.instance_id, change.last_success, target.cloud
            )
            outcome = "recovered"
            delivery = await self._deliveries.about_watch(
                key, target.channel_id, notice, self._watch_entry(target, outcome, None)
            )
            if not delivery.settled:
                return
            changed = await self._watch.set_stale(
                target.channel_id, target.instance_id, since=None, expected=stale_since
            )
        else:
            return
        if changed and delivery.outcome == "delivered":
            await self._audit_watch(target, outcome, None)

    async def _audit_watch(self, target: WatchTarget, outcome: str, backup_id: str | None) -> None:
        await self._audit.record(self._watch_entry(target, outcome, backup_id))

    @staticmethod
    def _watch_entry(target: WatchTarget, outcome: str, backup_id: str | None) -> AuditEntry:
        """The audit entry of a watch notice (its ``outcome`` becomes "lost" if it is given up)."""
        return AuditEntry(
            AuditKind.NOTICE,
            channel_id=target.channel_id,
            instance_id=target.instance_id,
            instance_name=target.instance_name,
            backup_id=backup_id,
            outcome=outcome,
            detail={"watch": True},
            cloud=target.cloud,
        )


def _about(request: BackupRequest) -> str:
    """What a log line about a request's share of the cycle names."""
    return f"request {request.request_id} ({request.state} backup of {request.instance_name})"
