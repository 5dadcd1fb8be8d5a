"""Protocols the core needs from the outside world; adapters implement them."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from bot.core.rules.audit import AuditEntry
from bot.core.rules.backup_request import BackupRequest, RequestEvent, RequestState
from bot.core.rules.home import HomeSnapshot
from bot.core.rules.instances import BackupFormat, BackupPage, Instance, InstancePage
from bot.core.rules.messages import Notice, PlannedCall, Reply
from bot.core.rules.pick_offer import PickOffer


class DcsApi(Protocol):
    """The four DCS v2 operations the bot uses, and the call a backup would make. Errors raise
    :class:`bot.core.errors.DcsError`; an instance DCS does not know raises
    :class:`bot.core.errors.InstanceNotFoundError`."""

    async def show_instance(self, instance_id: str) -> Instance: ...

    async def list_instances(
        self, *, name: str | None = None, exact: bool = False, limit: int = 100, offset: int = 0
    ) -> InstancePage: ...

    def planned_backup(self, instance_id: str, backup_format: BackupFormat, remark: str) -> PlannedCall:
        """The call :meth:`create_backup` would make, without making it (no I/O): for the dry run."""
        ...

    async def create_backup(self, instance_id: str, *, backup_format: BackupFormat, remark: str) -> str:
        """Starts a backup and returns its ``backup_id``."""
        ...

    async def list_backups(
        self,
        instance_id: str,
        *,
        begin_time: datetime | None = None,
        end_time: datetime | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> BackupPage: ...


class DcsClouds(Protocol):
    """The configured clouds (INTERFACE §8): their names in the clouds file's order, each one's DCS client,
    and how long resolving an instance in it may take before the answer goes on without it."""

    @property
    def names(self) -> Sequence[str]: ...

    def client(self, name: str) -> DcsApi:
        """Raises ``KeyError`` for a name not in :attr:`names`."""
        ...

    def bound(self, name: str) -> float:
        """Seconds a look-up in this cloud may take; a cloud slower than that is reported as not asked."""
        ...


class CloudMap:
    """:class:`DcsClouds` from a mapping of names to clients (in order), each with one bound."""

    def __init__(self, clients: Mapping[str, DcsApi], bounds: Mapping[str, float] | None = None) -> None:
        if not clients:
            raise ValueError("at least one cloud")
        self._clients = dict(clients)
        self._bounds = dict(bounds or {})

    @classmethod
    def single(cls, dcs: DcsApi, name: str = "default", bound: float = 60.0) -> CloudMap:
        return cls({name: dcs}, {name: bound})

    @property
    def names(self) -> Sequence[str]:
        return tuple(self._clients)

    def client(self, name: str) -> DcsApi:
        return self._clients[name]

    def bound(self, name: str) -> float:
        return self._bounds.get(name, 60.0)


class RequestStore(Protocol):
    """Durable backup requests. ``transition`` is atomic: of concurrent callers, exactly one wins; an
    event that makes a request unsettled (:func:`~bot.core.rules.backup_request.guards_instance`) wins only
    while no other request of the instance is unsettled, checked in the same atomic step."""

    async def add(self, request: BackupRequest) -> None: ...

    async def get(self, request_id: str) -> BackupRequest | None: ...

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
        """Applies ``event`` if the request is in a state that allows it (and, with ``unexpired``, has not
        expired at ``now``; with ``expired``, has; with ``orphaned``, its claim has run out or it has none,
        by the database's clock, as :meth:`SubmissionClaims.orphaned` judges); returns the updated request,
        or None when this caller did not win."""
        ...

    async def update(self, request_id: str, **changes: object) -> None: ...

    async def in_states(self, *states: RequestState) -> list[BackupRequest]: ...

    async def by_backup_id(self, backup_id: str) -> BackupRequest | None: ...

    async def past_expiry(self, now: datetime, *, limit: int = 100) -> list[BackupRequest]:
        """Requests still waiting for an answer (pending, awaiting approval) whose time ran out by ``now``,
        soonest expired first, at most ``limit``."""
        ...

    async def prune(self, before: datetime) -> int:
        """Deletes the requests in a final state that reached it before ``before``, and the pick offers
        made before it; returns how many requests."""
        ...

    async def owing_notices(self) -> list[BackupRequest]:
        """Requests with a notice the channel has not had yet (``notice_due`` set), oldest first."""
        ...

    async def requested_by(self, user_id: str, *, limit: int = 10) -> list[BackupRequest]:
        """The requests ``user_id`` made, in any state, newest first, at most ``limit``."""
        ...

    async def offer_picks(self, offer: PickOffer, picks: Sequence[str]) -> None:
        """Keeps ``offer`` for each of ``picks`` (the values of its ``backup_pick`` buttons), replacing an
        earlier offer of the same pick to the same person in the same channel. ``prune`` deletes the
        offers made before its ``before``."""
        ...

    async def offered(self, user_id: str, channel_id: str, pick: str, *, since: datetime) -> PickOffer | None:
        """The newest offer of ``pick`` to ``user_id`` in ``channel_id`` made at ``since`` or later."""
        ...


class RequestObserver(Protocol):
    """Hears of every request the store took: added, or moved to another state (a transition that won)."""

    def changed(self, request: BackupRequest) -> None:
        """Called right after the store took the change; must not block (schedule work, do not await it)."""
        ...


class AuditLog(Protocol):
    def record(self, entry: AuditEntry) -> Awaitable[None]:
        """Takes the row now — its place in the trail and its time are the moment of this call — and
        returns its commit: awaiting it returns once the row is committed, or raises if it could not be.
        Rows recorded and not yet awaited may wait to go in with the next awaited one (group commit)."""
        ...


class GroupDirectory(Protocol):
    """Slack user-group membership."""

    async def members(self, group_ids: frozenset[str]) -> dict[str, frozenset[str]]:
        """Members of each group; raises :class:`GroupLookupError` when Slack cannot tell for some."""
        ...


class GroupLookupError(Exception):
    """User-group membership could not be read.

    ``passing``: Slack could not answer just now (a timeout, a 5xx, a rate limit, an answer that is not
    Slack's JSON) and no members were known to fall back on; asking again in a moment may work. Otherwise
    Slack refused (e.g. ``plan_upgrade_required``, ``missing_scope``) and will again: group rules grant
    nothing. ``reason`` is Slack's error name or a short description, for the person and the log.
    """

    def __init__(self, reason: str, *, passing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.passing = passing


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class Delivered:
    """A notice reached Slack: as a channel message (its ``ts``) or through a response_url (no ``ts``)."""

    ts: str | None = None


@dataclass(frozen=True)
class UpdateResult:
    """What became of updating a channel message in place: ``updated``; ``gone`` (it can no longer be
    changed: deleted, or too old to edit); or ``refused`` for now (``retry_after``: seconds Slack asked to
    wait before the next update, if it said)."""

    outcome: Literal["updated", "gone", "refused"]
    retry_after: float | None = None


class Notifier(Protocol):
    """Delivers the bot's words: replies to one person, notices to a channel, and updates of the bot's
    own channel messages."""

    async def reply(self, response_url: str, reply: Reply, *, replace_original: bool = False) -> bool:
        """Answers through a ``response_url``; False when Slack did not take it."""
        ...

    async def announce(
        self,
        channel_id: str,
        notice: Notice,
        *,
        thread_ts: str | None = None,
        fallback_response_url: str | None = None,
        broadcast: bool = False,
    ) -> Delivered | None:
        """Posts to a channel, falling back to the ``response_url`` when the bot may not post there;
        None when Slack took it neither way (trying again later may help). ``broadcast``: a reply in a
        thread is also shown in the channel."""
        ...

    async def update_message(self, channel_id: str, ts: str, content: Notice | Reply) -> UpdateResult:
        """Replaces the bot's channel message ``ts`` with ``content`` (``chat.update``): a backup's living
        message, an approval request decided from the Home tab or expired (neither has a response_url to
        replace it with); raises nothing."""
        ...


class HomeAnswers(Protocol):
    """Answers to clicks made on a person's Home tab: such a click has no message (no response_url) to
    answer through, so the answer is shown on the Home tab itself."""

    def answer(self, user_id: str, reply: Reply) -> None:
        """Shows ``reply`` on ``user_id``'s Home tab soon; must not block."""
        ...


class NoHomeTab:
    """:class:`HomeAnswers` where no Home tab is served: an answer to a Home-tab click goes nowhere."""

    def answer(self, user_id: str, reply: Reply) -> None:
        return None


class HomePublisher(Protocol):
    """Shows a person their Home tab (Slack's ``views.publish``)."""

    async def publish(self, user_id: str, home: HomeSnapshot) -> bool:
        """False when Slack did not take it (never raises)."""
        ...


@dataclass(frozen=True)
class WatchState:
    watching_since: datetime
    stale_since: datetime | None


class WatchStore(Protocol):
    """What the watch remembers across restarts, per channel and instance."""

    async def state(self, channel_id: str, instance_id: str, instance_name: str, now: datetime) -> WatchState:
        """The watch's state; the first call for a pair records ``now`` as the moment watching began."""
        ...

    async def seen(self, channel_id: str, backup_ids: Iterable[str]) -> set[str]: ...

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
        """Records a final backup once; True only for the caller that recorded it (who then announces)."""
        ...

    async def set_stale(
        self, channel_id: str, instance_id: str, *, since: datetime | None, expected: datetime | None
    ) -> bool:
        """Compare-and-set of ``stale_since``; True when this caller changed it."""
        ...

    async def forget(self, before: datetime) -> int:
        """Forgets the final backups seen before ``before`` (returns how many) and moves the start of every
        watch that began earlier up to ``before``: a forgotten backup that DCS still lists ended before
        the watch "began", so it is never announced again."""
        ...


class EventDeliveries(Protocol):
    """Which Events API deliveries arrived already, across every replica: Slack delivers an event again
    when its first delivery was not acknowledged in time, and any replica may get either delivery."""

    async def first_delivery(self, event_id: str, now: datetime) -> bool:
        """True the first time ``event_id`` is seen, False for a redelivery; atomic across replicas."""
        ...

    async def prune(self, before: datetime) -> int:
        """Forgets deliveries received before ``before`` (Slack redelivers within minutes); how many."""
        ...


@dataclass(frozen=True)
class HomeViewer:
    """Someone looking at their Home tab, and what its last publish showed them: the policy's user groups
    they were in and the instances on it (empty before their first publish)."""

    user_id: str
    groups: frozenset[str] = frozenset()
    shown: frozenset[str] = frozenset()


class HomeViewers(Protocol):
    """Who is looking at their Home tab, across every replica (INTERFACE §9, §11): any replica may receive
    the ``app_home_opened``, and any may make a change that tab shows."""

    async def opened(self, user_id: str, now: datetime) -> None:
        """Records that ``user_id`` opened their Home tab at ``now``."""
        ...

    async def viewing(self, since: datetime, *, limit: int) -> list[HomeViewer]:
        """The people who opened their tab at ``since`` or later, the latest first, at most ``limit``."""
        ...

    async def claim_publish(self, user_id: str, interval: float, now: datetime) -> bool:
        """Takes the next publish of ``user_id``'s tab unless a replica took one within the last
        ``interval`` seconds (by the database's clock); atomic across replicas. Someone not recorded yet
        (they clicked on a tab opened before) is recorded as having opened it at ``now``."""
        ...

    async def showed(self, user_id: str, groups: frozenset[str], shown: frozenset[str]) -> None:
        """What the latest publish of ``user_id``'s tab showed (see :class:`HomeViewer`)."""
        ...

    async def prune(self, before: datetime) -> int:
        """Forgets the people who opened their tab before ``before``; how many."""
        ...


# --- several replicas (INTERFACE §9) --------------------------------------------------------------------


@dataclass(frozen=True)
class Claimant:
    """This replica as the owner of the submissions it makes: its id (unique per process) and how many
    seconds a claim lasts unless renewed. A request store given one records the claim in the same atomic
    step that moves a request into ``submitting``."""

    replica: str
    ttl: float


class Lease(Protocol):
    """One named lease in the shared database, held for ``ttl`` seconds by one replica at a time, as this
    replica sees it. Expiry is judged by the database's clock, never a replica's. The epoch grows whenever
    the holder changes, so a holder can tell that someone else held the lease in between."""

    @property
    def holder(self) -> str: ...

    async def acquire(self) -> int | None:
        """Takes the lease — or renews it — when it is free, expired or already this replica's, for ``ttl``
        seconds from now; the epoch it is held under, or None while another replica holds it."""
        ...

    async def holds(self, epoch: int) -> bool:
        """Whether this replica still holds the lease under ``epoch``, unexpired."""
        ...

    async def release(self, epoch: int) -> None:
        """Ends the lease at once when this replica holds it under ``epoch``, so a standby takes it over
        on its next try."""
        ...


class SubmissionClaims(Protocol):
    """The claims replicas hold on the submissions they are making (recorded by the request store of a
    :class:`Claimant`), as one replica sees them."""

    async def renew(self) -> int:
        """Extends this replica's claims on its requests still ``submitting`` by the claim's ttl from now
        (the database's clock); how many."""
        ...

    async def orphaned(self) -> list[str]:
        """The ids of the requests in ``submitting`` whose owner is gone: their claim expired, or they
        have none (rows from an earlier release). Never this replica's own."""
        ...
