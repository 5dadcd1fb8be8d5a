"""In-memory fakes of every port in :mod:`bot.core.ports`, for testing the flow without sockets or SQL.

Each fake keeps its state in plain containers a test can read, records what it was asked, and can be told
to fail where a flow test needs a fault. Every async method first yields to the event loop once, as real
I/O would, so that ``asyncio.gather`` of two clicks really interleaves them; state changes that the real
adapters make atomically (``RequestStore.transition``, ``WatchStore.remember`` …) have no yield between
their check and their write, so they stay atomic here too.

``Fakes`` bundles one of each with a policy and options; ``service_on(fakes)`` builds the
:class:`BackupService` the Slack adapter would call.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import itertools
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bot.core.errors import DcsTransportError, InstanceNotFoundError
from bot.core.flow.context import ServiceOptions
from bot.core.flow.service import BackupService
from bot.core.ports import Claimant, Clock, Delivered, GroupLookupError, HomeViewer, UpdateResult, WatchState
from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.backup_request import (
    FINAL_STATES,
    UNSETTLED_STATES,
    BackupRequest,
    RequestEvent,
    RequestState,
    guards_instance,
    next_state,
    sources_of,
)
from bot.core.rules.instances import BackupFormat, BackupPage, BackupRecord, Instance, InstancePage
from bot.core.rules.messages import Notice, PlannedCall, Reply
from bot.core.rules.pick_offer import PickOffer
from bot.core.rules.policy import Policy
from bot.policy_file import parse_policy

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PROJECT_ID = "0123456789abcdef0123456789abcdef"
CONFIRM_TTL = 300.0
APPROVAL_TTL = 3600.0

T = TypeVar("T")


async def _checkpoint() -> None:
    """Where a real adapter would wait for the network or the database."""
    await asyncio.sleep(0)


# --- Clock ---------------------------------------------------------------------------------------------


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = NOW) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


class WallClock:
    """The real time, as the database's clock is for the SQLite store (for the fakes' contract tests)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


# --- DcsApi --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DcsCall:
    """One call the flow made: the method's name, the instance it named (if any) and its other arguments."""

    method: str
    instance_id: str | None
    arguments: dict[str, Any] = field(default_factory=dict)


def fake_backup_id(n: int) -> str:
    """The ``n``-th backup id the fake DCS hands out (1, 2 …): a UUID, as DCS's are."""
    return f"bac0{n:04x}-0000-4000-8000-{n:012x}"


def instance_not_found(instance_id: str) -> InstanceNotFoundError:
    """What DCS answers for an instance it does not have (the one place that knows how that looks)."""
    return InstanceNotFoundError(
        404, "DCS.4061", f"The instance {instance_id} does not exist.", request_id="fake-req"
    )


class FakeDcs:
    """A DCS project of instances and their backup records.

    ``fail(method, error, times=…)`` makes the next calls of ``method`` raise ``error``;
    ``lose_create_answers()`` makes ``create_backup`` start the backup and then lose DCS's answer (as a
    timeout after the POST reached DCS does).
    """

    def __init__(
        self, *instances: Instance, clock: FakeClock | None = None, project_id: str = PROJECT_ID
    ) -> None:
        self.instances: dict[str, Instance] = {i.instance_id: i for i in instances}
        self.backups: dict[str, list[BackupRecord]] = {i.instance_id: [] for i in instances}
        self.calls: list[DcsCall] = []
        self.project_id = project_id
        self.clock = clock or FakeClock()
        self._faults: dict[str, list[Exception]] = {}
        self._lost_answers = 0
        self._ids = itertools.count(1)

    # what a test sets up

    def add_instance(self, instance: Instance) -> Instance:
        self.instances[instance.instance_id] = instance
        self.backups.setdefault(instance.instance_id, [])
        return instance

    def add_record(self, instance_id: str, record: BackupRecord) -> BackupRecord:
        self.backups.setdefault(instance_id, []).append(record)
        return record

    def fail(self, method: str, error: Exception, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` raise ``error`` (after being recorded): a
        :class:`DcsError` as the adapter raises them, or anything else to play an adapter with a bug."""
        self._faults.setdefault(method, []).extend([error] * times)

    def lose_create_answers(self, times: int = 1) -> None:
        self._lost_answers += times

    # what a test asserts on

    def calls_to(self, method: str) -> list[DcsCall]:
        return [call for call in self.calls if call.method == method]

    @property
    def created(self) -> list[DcsCall]:
        """Every ``create_backup`` call, successful or not."""
        return self.calls_to("create_backup")

    # the port

    async def show_instance(self, instance_id: str) -> Instance:
        await self._called("show_instance", instance_id)
        instance = self.instances.get(instance_id.lower())
        if instance is None:
            raise instance_not_found(instance_id)
        return instance

    async def list_instances(
        self, *, name: str | None = None, exact: bool = False, limit: int = 100, offset: int = 0
    ) -> InstancePage:
        await self._called("list_instances", None, name=name, exact=exact, limit=limit, offset=offset)
        # ListInstances has no cache_mode; DCS matches names by substring unless asked for an exact match.
        matches = [
            dataclasses.replace(i, cache_mode=None)
            for i in self.instances.values()
            if name is None or (i.name == name if exact else name in i.name)
        ]
        return InstancePage(instances=matches[offset : offset + limit], total=len(matches))

    async def create_backup(self, instance_id: str, *, backup_format: BackupFormat, remark: str) -> str:
        await self._called("create_backup", instance_id, backup_format=backup_format, remark=remark)
        if instance_id not in self.instances:
            raise instance_not_found(instance_id)
        backup_id = fake_backup_id(next(self._ids))
        self.add_record(
            instance_id,
            BackupRecord(
                backup_id=backup_id,
                instance_id=instance_id,
                remark=remark,
                backup_type="manual",
                backup_format=str(backup_format),
                status="waiting",
                created_at=self.clock.now(),
            ),
        )
        if self._lost_answers:
            self._lost_answers -= 1
            raise DcsTransportError("the answer to CreateBackup was lost")
        return backup_id

    async def list_backups(
        self,
        instance_id: str,
        *,
        begin_time: datetime | None = None,
        end_time: datetime | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> BackupPage:
        await self._called(
            "list_backups", instance_id, begin_time=begin_time, end_time=end_time, limit=limit, offset=offset
        )
        if instance_id not in self.instances:
            raise instance_not_found(instance_id)
        records = [
            r
            for r in self.backups.get(instance_id, [])
            if (begin_time is None or (r.created_at is not None and r.created_at >= begin_time))
            and (end_time is None or (r.created_at is not None and r.created_at <= end_time))
        ]
        records.sort(key=lambda r: r.created_at or NOW, reverse=True)
        return BackupPage(records=records[offset : offset + limit], total=len(records))

    def planned_backup(self, instance_id: str, backup_format: BackupFormat, remark: str) -> PlannedCall:
        """The call ``create_backup`` would make (pure: recorded, never failing)."""
        self.calls.append(
            DcsCall("planned_backup", instance_id, {"backup_format": backup_format, "remark": remark})
        )
        return PlannedCall(
            "POST",
            f"/v2/{self.project_id}/instances/{instance_id}/backups",
            {"remark": remark, "backup_format": str(backup_format)},
        )

    async def _called(self, method: str, instance_id: str | None, **arguments: Any) -> None:
        self.calls.append(DcsCall(method, instance_id, arguments))
        await _checkpoint()
        faults = self._faults.get(method)
        if faults:
            raise faults.pop(0)


# --- RequestStore --------------------------------------------------------------------------------------

_REQUEST_FIELDS = frozenset(f.name for f in fields(BackupRequest))


@dataclass(frozen=True)
class TransitionAttempt:
    """One call of ``transition``; ``won`` tells whether it changed the request."""

    request_id: str
    event: RequestEvent
    unexpired: bool
    changes: dict[str, object]
    won: bool
    expired: bool = False
    orphaned: bool = False


class FakeRequestStore:
    """Backup requests in a dict, with the same rules as the SQLite store: ``transition`` moves a request
    only from a state the event allows (and, with ``unexpired``, only while ``expires_at > now``; with
    ``expired``, only once ``expires_at <= now``; into an unsettled state only while no other request of
    the instance is unsettled), sets ``updated_at`` to ``now``, and refuses unknown fields; ``update``
    never changes the state. ``pruned`` collects the ids ``prune`` deleted.

    With a ``claimant``, the move into ``submitting`` records its claim in ``claims`` (request id → the
    replica and when the claim runs out, by ``clock``: the database's clock); :meth:`replica` is the same
    store as another replica sees it."""

    def __init__(
        self, *requests: BackupRequest, claimant: Claimant | None = None, clock: Clock | None = None
    ) -> None:
        self.requests: dict[str, BackupRequest] = {}
        self.transitions: list[TransitionAttempt] = []
        self.updates: list[tuple[str, dict[str, object]]] = []
        self.pruned: list[str] = []
        self.claims: dict[str, tuple[str, datetime]] = {}
        # (person, channel, pick) → the offer of that pick.
        self.offers: dict[tuple[str, str, str], PickOffer] = {}
        self.claimant = claimant
        self.clock: Clock = clock or WallClock()
        for request in requests:
            self.requests[request.request_id] = request

    def replica(self, claimant: Claimant) -> FakeRequestStore:
        """The same requests and claims (every container shared), as the replica ``claimant`` sees them."""
        view = copy.copy(self)
        view.claimant = claimant
        return view

    def is_orphan(self, request_id: str) -> bool:
        """Whether the claim on ``request_id`` ran out (or there is none), and it is not this replica's."""
        claim = self.claims.get(request_id)
        mine = self.claimant.replica if self.claimant is not None else ""
        return claim is None or (claim[0] != mine and claim[1] <= self.clock.now())

    def winners(self, event: RequestEvent) -> list[TransitionAttempt]:
        return [t for t in self.transitions if t.event == event and t.won]

    async def add(self, request: BackupRequest) -> None:
        await _checkpoint()
        if request.request_id in self.requests:
            raise ValueError(f"request {request.request_id} exists already")
        self.requests[request.request_id] = request

    async def get(self, request_id: str) -> BackupRequest | None:
        await _checkpoint()
        return self.requests.get(request_id)

    async def transition(
        self,
        request_id: str,
        event: RequestEvent,
        *,
        now: datetime,
        unexpired: bool = False,
        expired: bool = False,
        orphaned: bool = False,
        **changes: object,
    ) -> BackupRequest | None:
        await _checkpoint()
        # From here on no await: the check and the write are one step, like the store's conditional UPDATE.
        sources = sources_of(event)
        targets = {next_state(source, event) for source in sources}
        if len(targets) != 1:
            raise ValueError(f"event {event} leads to several states: {targets}")
        unknown = set(changes) - _REQUEST_FIELDS
        if unknown:
            raise ValueError(f"unknown request fields: {unknown}")
        target = targets.pop()
        assert target is not None
        current = self.requests.get(request_id)
        won = (
            current is not None
            and current.state in sources
            and (not unexpired or current.expires_at > now)
            and (not expired or current.expires_at <= now)
            and (not orphaned or self.is_orphan(request_id))
        )
        if won and current is not None and guards_instance(event):
            won = not any(
                other.instance_id == current.instance_id
                and other.state in UNSETTLED_STATES
                and other.request_id != request_id
                for other in self.requests.values()
            )
        self.transitions.append(
            TransitionAttempt(request_id, event, unexpired, dict(changes), won, expired, orphaned)
        )
        if not won or current is None:
            return None
        changed = current.with_state(target, updated_at=now, **changes)
        self.requests[request_id] = changed
        if self.claimant is not None and target == RequestState.SUBMITTING:
            until = self.clock.now() + timedelta(seconds=self.claimant.ttl)
            self.claims[request_id] = (self.claimant.replica, until)
        return changed

    async def update(self, request_id: str, **changes: object) -> None:
        await _checkpoint()
        if set(changes) - _REQUEST_FIELDS or "state" in changes:
            raise ValueError("update() sets plain fields; states change through transition()")
        self.updates.append((request_id, dict(changes)))
        current = self.requests.get(request_id)
        if current is not None:
            self.requests[request_id] = replace(current, **changes)  # type: ignore[arg-type]

    async def in_states(self, *states: RequestState) -> list[BackupRequest]:
        await _checkpoint()
        found = [r for r in self.requests.values() if r.state in states]
        return sorted(found, key=lambda r: r.created_at)

    async def by_backup_id(self, backup_id: str) -> BackupRequest | None:
        await _checkpoint()
        return next((r for r in self.requests.values() if r.backup_id == backup_id), None)

    async def past_expiry(self, now: datetime, *, limit: int = 100) -> list[BackupRequest]:
        await _checkpoint()
        waiting = (RequestState.PENDING, RequestState.AWAITING_APPROVAL)
        found = [r for r in self.requests.values() if r.state in waiting and r.expires_at <= now]
        return sorted(found, key=lambda r: r.expires_at)[:limit]

    async def prune(self, before: datetime) -> int:
        await _checkpoint()
        gone = [
            r.request_id
            for r in self.requests.values()
            if r.state in FINAL_STATES
            and r.notice_due is None
            and (r.finished_at or r.updated_at or r.created_at) < before
        ]
        for request_id in gone:
            del self.requests[request_id]
        self.pruned += gone
        for key in [key for key, offer in self.offers.items() if offer.offered_at < before]:
            del self.offers[key]
        return len(gone)

    async def owing_notices(self) -> list[BackupRequest]:
        await _checkpoint()
        return sorted(
            (r for r in self.requests.values() if r.notice_due is not None), key=lambda r: r.created_at
        )

    async def requested_by(self, user_id: str, *, limit: int = 10) -> list[BackupRequest]:
        await _checkpoint()
        mine = sorted(
            (r for r in self.requests.values() if r.requester_id == user_id), key=lambda r: r.request_id
        )
        return sorted(mine, key=lambda r: r.created_at, reverse=True)[:limit]

    async def offer_picks(self, offer: PickOffer, picks: Sequence[str]) -> None:
        await _checkpoint()
        for pick in picks:
            self.offers[(offer.user_id, offer.channel_id, pick)] = offer

    async def offered(self, user_id: str, channel_id: str, pick: str, *, since: datetime) -> PickOffer | None:
        await _checkpoint()
        offer = self.offers.get((user_id, channel_id, pick))
        return offer if offer is not None and offer.offered_at >= since else None


class FakeSubmissionClaims:
    """The claims of a :class:`FakeRequestStore`, as the replica ``claimant`` sees them."""

    def __init__(self, store: FakeRequestStore, claimant: Claimant) -> None:
        self._store = store
        self._claimant = claimant

    async def renew(self) -> int:
        await _checkpoint()
        until = self._store.clock.now() + timedelta(seconds=self._claimant.ttl)
        mine = [
            request_id
            for request_id, (replica, _) in self._store.claims.items()
            if replica == self._claimant.replica and self._submitting(request_id)
        ]
        for request_id in mine:
            self._store.claims[request_id] = (self._claimant.replica, until)
        return len(mine)

    async def orphaned(self) -> list[str]:
        await _checkpoint()
        view = self._store.replica(self._claimant)
        requests = sorted(self._store.requests.values(), key=lambda r: r.created_at)
        return [
            r.request_id
            for r in requests
            if r.state == RequestState.SUBMITTING and view.is_orphan(r.request_id)
        ]

    def _submitting(self, request_id: str) -> bool:
        request = self._store.requests.get(request_id)
        return request is not None and request.state == RequestState.SUBMITTING


# --- Lease ---------------------------------------------------------------------------------------------


@dataclass
class LeaseRow:
    holder: str
    epoch: int
    expires_at: datetime


class FakeLeaseTable:
    """The lease rows every :class:`FakeLease` of one test shares, with the database's ``clock``."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or WallClock()
        self.rows: dict[str, LeaseRow] = {}
        self.fail_next: Exception | None = None

    def lease(self, holder: str, ttl: float, name: str = "background") -> FakeLease:
        return FakeLease(self, holder=holder, ttl=ttl, name=name)


class FakeLease:
    """:class:`bot.core.ports.Lease` on a :class:`FakeLeaseTable`; ``fail_next`` on the table makes the
    next call of any lease raise it (a database that does not answer)."""

    def __init__(self, table: FakeLeaseTable, *, holder: str, ttl: float, name: str = "background") -> None:
        self._table = table
        self._holder = holder
        self._ttl = timedelta(seconds=ttl)
        self._name = name

    @property
    def holder(self) -> str:
        return self._holder

    async def acquire(self) -> int | None:
        await self._io()
        now = self._table.clock.now()
        row = self._table.rows.get(self._name)
        if row is None:
            self._table.rows[self._name] = LeaseRow(self._holder, 1, now + self._ttl)
            return 1
        if row.holder != self._holder and row.expires_at > now:
            return None
        if row.holder != self._holder:
            row.epoch += 1
            row.holder = self._holder
        row.expires_at = now + self._ttl
        return row.epoch

    async def holds(self, epoch: int) -> bool:
        await self._io()
        row = self._table.rows.get(self._name)
        return (
            row is not None
            and (row.holder, row.epoch) == (self._holder, epoch)
            and row.expires_at > self._table.clock.now()
        )

    async def release(self, epoch: int) -> None:
        await self._io()
        now = self._table.clock.now()
        row = self._table.rows.get(self._name)
        if row is not None and (row.holder, row.epoch) == (self._holder, epoch) and row.expires_at > now:
            row.expires_at = now

    async def _io(self) -> None:
        await _checkpoint()
        failure, self._table.fail_next = self._table.fail_next, None
        if failure is not None:
            raise failure


# --- AuditLog ------------------------------------------------------------------------------------------


class FakeAuditLog:
    """``entries`` in the order they were recorded; ``committed``, those whose commit was awaited."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []
        self.committed: list[AuditEntry] = []

    def record(self, entry: AuditEntry) -> Awaitable[None]:
        self.entries.append(entry)
        return self._commit(entry)

    async def _commit(self, entry: AuditEntry) -> None:
        await _checkpoint()
        self.committed.append(entry)

    def kinds(self) -> list[AuditKind]:
        return [entry.kind for entry in self.entries]

    def of(self, kind: AuditKind) -> list[AuditEntry]:
        return [entry for entry in self.entries if entry.kind == kind]


# --- GroupDirectory ------------------------------------------------------------------------------------


class FakeGroupDirectory:
    """User groups by id. ``fail(reason)`` makes every lookup raise :class:`GroupLookupError` — a definite
    refusal, or with ``passing=True`` a passing failure (Slack could not tell just now); ``recover()``
    ends it. ``asked`` records every lookup."""

    def __init__(self, groups: dict[str, Iterable[str]] | None = None) -> None:
        self.groups: dict[str, frozenset[str]] = {g: frozenset(m) for g, m in (groups or {}).items()}
        self.asked: list[frozenset[str]] = []
        self.failure: GroupLookupError | None = None

    def fail(self, reason: str = "plan_upgrade_required", *, passing: bool = False) -> None:
        self.failure = GroupLookupError(reason, passing=passing)

    def recover(self) -> None:
        self.failure = None

    async def members(self, group_ids: frozenset[str]) -> dict[str, frozenset[str]]:
        self.asked.append(group_ids)
        await _checkpoint()
        if self.failure is not None:
            raise self.failure
        return {group: self.groups.get(group, frozenset()) for group in group_ids}


# --- Notifier ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentReply:
    response_url: str
    reply: Reply
    replace_original: bool
    taken: bool


@dataclass(frozen=True)
class Announcement:
    channel_id: str
    notice: Notice
    thread_ts: str | None
    fallback_response_url: str | None
    delivered: Delivered | None
    broadcast: bool = False


@dataclass(frozen=True)
class MessageUpdate:
    channel_id: str
    ts: str
    content: Notice | Reply
    result: UpdateResult


class FakeNotifier:
    """Records every reply and notice.

    ``refuse_replies`` / ``refuse_announcements`` make Slack take nothing; a channel in ``closed_channels``
    is one the bot may not post in, so a notice there goes through the fallback response_url (no ``ts``).
    ``update_results`` are the answers the next updates of channel messages get (then ``updated``).
    """

    def __init__(self) -> None:
        self.replies: list[SentReply] = []
        self.announcements: list[Announcement] = []
        self.refuse_replies = False
        self.refuse_announcements = False
        self.closed_channels: set[str] = set()
        self.updates: list[MessageUpdate] = []
        self.update_results: list[UpdateResult] = []
        self._ts = itertools.count(1)

    async def reply(self, response_url: str, reply: Reply, *, replace_original: bool = False) -> bool:
        await _checkpoint()
        taken = not self.refuse_replies
        self.replies.append(SentReply(response_url, reply, replace_original, taken))
        return taken

    async def announce(
        self,
        channel_id: str,
        notice: Notice,
        *,
        thread_ts: str | None = None,
        fallback_response_url: str | None = None,
        broadcast: bool = False,
    ) -> Delivered | None:
        await _checkpoint()
        delivered: Delivered | None
        if self.refuse_announcements:
            delivered = None
        elif channel_id in self.closed_channels:
            delivered = Delivered() if fallback_response_url else None
        else:
            delivered = Delivered(ts=f"1700000000.{next(self._ts):06d}")
        self.announcements.append(
            Announcement(channel_id, notice, thread_ts, fallback_response_url, delivered, broadcast)
        )
        return delivered

    async def update_message(self, channel_id: str, ts: str, content: Notice | Reply) -> UpdateResult:
        await _checkpoint()
        result = self.update_results.pop(0) if self.update_results else UpdateResult("updated")
        self.updates.append(MessageUpdate(channel_id, ts, content, result))
        return result

    def replies_of(self, kind: type[T]) -> list[T]:
        return [sent.reply for sent in self.replies if isinstance(sent.reply, kind)]

    def notices_of(self, kind: type[T]) -> list[T]:
        return [sent.notice for sent in self.announcements if isinstance(sent.notice, kind)]

    def replies_to(self, response_url: str) -> list[Reply]:
        return [sent.reply for sent in self.replies if sent.response_url == response_url]


# --- WatchStore ----------------------------------------------------------------------------------------


@dataclass
class _Watched:
    instance_name: str
    watching_since: datetime
    stale_since: datetime | None = None


@dataclass(frozen=True)
class SeenBackup:
    instance_id: str
    status: str
    announced: bool
    seen_at: datetime


class FakeWatchStore:
    """What the watch remembers, in dicts keyed by (channel, instance) and (channel, backup)."""

    def __init__(self) -> None:
        self.watched: dict[tuple[str, str], _Watched] = {}
        self.seen_backups: dict[tuple[str, str], SeenBackup] = {}

    async def state(self, channel_id: str, instance_id: str, instance_name: str, now: datetime) -> WatchState:
        await _checkpoint()
        watched = self.watched.setdefault((channel_id, instance_id), _Watched(instance_name, now))
        return WatchState(watched.watching_since, watched.stale_since)

    async def seen(self, channel_id: str, backup_ids: Iterable[str]) -> set[str]:
        await _checkpoint()
        return {b for b in backup_ids if (channel_id, b) in self.seen_backups}

    async def remember(
        self,
        channel_id: str,
        backup_id: str,
        instance_id: str,
        status: str,
        *,
        announced: bool,
        now: datetime,
    ) -> bool:
        await _checkpoint()
        if (channel_id, backup_id) in self.seen_backups:
            return False
        self.seen_backups[(channel_id, backup_id)] = SeenBackup(instance_id, status, announced, now)
        return True

    async def set_stale(
        self, channel_id: str, instance_id: str, *, since: datetime | None, expected: datetime | None
    ) -> bool:
        await _checkpoint()
        watched = self.watched.get((channel_id, instance_id))
        if watched is None or watched.stale_since != expected:
            return False
        watched.stale_since = since
        return True

    async def forget(self, before: datetime) -> int:
        await _checkpoint()
        gone = [key for key, seen in self.seen_backups.items() if seen.seen_at < before]
        for key in gone:
            del self.seen_backups[key]
        for watched in self.watched.values():
            watched.watching_since = max(watched.watching_since, before)
        return len(gone)


# --- EventDeliveries -----------------------------------------------------------------------------------


class FakeEventDeliveries:
    """The Events API deliveries seen, by event id, with the time of the first; ``asked`` records every
    question in order. With ``fails`` set, every question raises it."""

    def __init__(self) -> None:
        self.first_seen: dict[str, datetime] = {}
        self.asked: list[tuple[str, datetime]] = []
        self.fails: Exception | None = None

    async def first_delivery(self, event_id: str, now: datetime) -> bool:
        await _checkpoint()
        self.asked.append((event_id, now))
        if self.fails is not None:
            raise self.fails
        if event_id in self.first_seen:
            return False
        self.first_seen[event_id] = now
        return True

    async def prune(self, before: datetime) -> int:
        old = [event_id for event_id, at in self.first_seen.items() if at < before]
        for event_id in old:
            del self.first_seen[event_id]
        return len(old)


# --- HomeViewers -----------------------------------------------------------------------------------------


@dataclass
class ViewerRow:
    opened_at: datetime
    published_at: datetime | None = None
    groups: frozenset[str] = frozenset()
    shown: frozenset[str] = frozenset()


class FakeHomeViewers:
    """Who is looking at their Home tab, shared by the replicas of a test; ``clock`` is the database's
    (it times the publishes taken). ``asked`` counts the look-ups of :meth:`viewing`; with ``fails`` set,
    every call raises it."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or WallClock()
        self.rows: dict[str, ViewerRow] = {}
        self.asked = 0
        self.fails: Exception | None = None

    async def _io(self) -> None:
        await _checkpoint()
        if self.fails is not None:
            raise self.fails

    async def opened(self, user_id: str, now: datetime) -> None:
        await self._io()
        row = self.rows.get(user_id)
        if row is None:
            self.rows[user_id] = ViewerRow(now)
        else:
            row.opened_at = now

    async def viewing(self, since: datetime, *, limit: int) -> list[HomeViewer]:
        await self._io()
        self.asked += 1
        recent = sorted(
            ((user_id, row) for user_id, row in self.rows.items() if row.opened_at >= since),
            key=lambda item: item[1].opened_at,
            reverse=True,
        )
        return [HomeViewer(user_id, row.groups, row.shown) for user_id, row in recent[:limit]]

    async def claim_publish(self, user_id: str, interval: float, now: datetime) -> bool:
        await self._io()
        at = self.clock.now()
        row = self.rows.setdefault(user_id, ViewerRow(now))
        if row.published_at is not None and row.published_at > at - timedelta(seconds=interval):
            return False
        row.published_at = at
        return True

    async def showed(self, user_id: str, groups: frozenset[str], shown: frozenset[str]) -> None:
        await self._io()
        row = self.rows.get(user_id)
        if row is not None:
            row.groups, row.shown = groups, shown

    async def prune(self, before: datetime) -> int:
        await self._io()
        old = [user_id for user_id, row in self.rows.items() if row.opened_at < before]
        for user_id in old:
            del self.rows[user_id]
        return len(old)


# --- the service on the fakes --------------------------------------------------------------------------


def options(**overrides: Any) -> ServiceOptions:
    values: dict[str, Any] = {
        "confirm_ttl": CONFIRM_TTL,
        "approval_ttl": APPROVAL_TTL,
        "default_format": BackupFormat.RDB,
    }
    return ServiceOptions(**(values | overrides))


@dataclass
class Fakes:
    """One fake of each port, a policy a test may swap (``fakes.policy = …`` takes effect at once) and the
    service options."""

    policy: Policy
    clock: FakeClock = field(default_factory=FakeClock)
    dcs: FakeDcs = field(default_factory=FakeDcs)
    requests: FakeRequestStore = field(default_factory=FakeRequestStore)
    audit: FakeAuditLog = field(default_factory=FakeAuditLog)
    groups: FakeGroupDirectory = field(default_factory=FakeGroupDirectory)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    watch: FakeWatchStore = field(default_factory=FakeWatchStore)
    options: ServiceOptions = field(default_factory=options)

    def __post_init__(self) -> None:
        self.dcs.clock = self.clock  # one time for everything: DCS stamps its records with it
        self.requests.clock = self.clock

    def set_policy(self, text: str) -> Policy:
        self.policy = parse_policy(text)
        return self.policy


def make_fakes(
    policy: Policy | str,
    *instances: Instance,
    groups: dict[str, Iterable[str]] | None = None,
    clock: FakeClock | None = None,
    **option_overrides: Any,
) -> Fakes:
    """Fakes for ``policy`` (a Policy or its TOML text) with ``instances`` in the DCS project."""
    clock = clock or FakeClock()
    return Fakes(
        policy=parse_policy(policy) if isinstance(policy, str) else policy,
        clock=clock,
        dcs=FakeDcs(*instances, clock=clock),
        groups=FakeGroupDirectory(groups),
        options=options(**option_overrides),
    )


def service_on(fakes: Fakes) -> BackupService:
    """The BackupService wired to ``fakes``; it reads ``fakes.policy`` anew for every decision."""
    return BackupService(
        dcs=fakes.dcs,
        requests=fakes.requests,
        audit=fakes.audit,
        groups=fakes.groups,
        notifier=fakes.notifier,
        policy=lambda: fakes.policy,
        clock=fakes.clock,
        options=fakes.options,
    )
