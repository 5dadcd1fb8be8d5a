"""Protocols the core needs from the outside world; adapters implement them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from bot.core.rules.audit import AuditEntry
from bot.core.rules.backup_request import BackupRequest, RequestEvent, RequestState
from bot.core.rules.instances import BackupFormat, BackupPage, Instance, InstancePage
from bot.core.rules.messages import Notice, PlannedCall, Reply


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
        **changes: object,
    ) -> BackupRequest | None:
        """Applies ``event`` if the request is in a state that allows it (and, with ``unexpired``, has not
        expired at ``now``; with ``expired``, has); returns the updated request, or None when this caller
        did not win."""
        ...

    async def update(self, request_id: str, **changes: object) -> None: ...

    async def in_states(self, *states: RequestState) -> list[BackupRequest]: ...

    async def by_backup_id(self, backup_id: str) -> BackupRequest | None: ...

    async def past_expiry(self, now: datetime, *, limit: int = 100) -> list[BackupRequest]:
        """Requests still waiting for an answer (pending, awaiting approval) whose time ran out by ``now``,
        soonest expired first, at most ``limit``."""
        ...

    async def prune(self, before: datetime) -> int:
        """Deletes the requests in a final state that reached it before ``before``; returns how many."""
        ...

    async def owing_notices(self) -> list[BackupRequest]:
        """Requests with a notice the channel has not had yet (``notice_due`` set), oldest first."""
        ...


class AuditLog(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...


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
        """Replaces the bot's channel message ``ts`` with ``content``; raises nothing."""
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
