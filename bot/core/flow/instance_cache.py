"""A short-lived memory of instances, for resolving the instance a command names.

A burst of commands tends to name the same few instances; without it, each one costs a ListInstances
(name → id) and a ShowInstance. Entries live :data:`INSTANCE_TTL` on the workflow's clock, so a status
the bot shows is never older than that. Only RUNNING instances are kept: a person told an instance cannot
be backed up sees its recovery at the next command.

The cache serves the card only (and :class:`EstateCache`, one per cloud in :class:`Estates`, the form's
instance picker and the Home tab). Submitting a backup
never reads it — DCS itself refuses an instance that is not running, and the person is told — and neither
do list and status, whose records are always fresh.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from bot.core.errors import InstanceNotFoundError
from bot.core.ports import Clock, DcsApi, DcsClouds
from bot.core.rules.instances import Instance

#: How long a resolved name and a ShowInstance result are used before DCS is asked again.
INSTANCE_TTL = timedelta(seconds=30)
#: Entries kept at most (per kind); beyond, expired ones are dropped, then all if need be.
INSTANCE_CACHE_SIZE = 1000

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry(Generic[T]):
    at: datetime
    value: T


class InstanceCache:
    def __init__(
        self, dcs: DcsApi, clock: Clock, *, ttl: timedelta = INSTANCE_TTL, size: int = INSTANCE_CACHE_SIZE
    ) -> None:
        self._dcs = dcs
        self._clock = clock
        self._ttl = ttl
        self._size = size
        self._ids: dict[str, _Entry[str]] = {}
        self._instances: dict[str, _Entry[Instance]] = {}

    def id_of(self, name: str) -> str | None:
        """The id of the one instance named exactly ``name``, if resolved within the TTL."""
        entry = self._fresh(self._ids, name)
        return None if entry is None else entry.value

    def named(self, name: str, instance_id: str) -> None:
        """Remembers that ``name`` is exactly one instance, ``instance_id``."""
        self._put(self._ids, name, instance_id)

    async def show_instance(self, instance_id: str) -> Instance:
        """ShowInstance, or its result of less than the TTL ago. Raises what the port raises."""
        key = instance_id.lower()
        entry = self._fresh(self._instances, key)
        if entry is not None:
            return entry.value
        try:
            instance = await self._dcs.show_instance(instance_id)
        except InstanceNotFoundError:
            self.forget(instance_id)
            raise
        if instance.is_running:
            self._put(self._instances, key, instance)
        else:
            self._instances.pop(key, None)
        return instance

    def forget(self, instance_id: str) -> None:
        key = instance_id.lower()
        self._instances.pop(key, None)
        for name in [name for name, entry in self._ids.items() if entry.value.lower() == key]:
            del self._ids[name]

    def _fresh(self, entries: dict[str, _Entry[T]], key: str) -> _Entry[T] | None:
        entry = entries.get(key)
        if entry is None:
            return None
        age = self._clock.now() - entry.at
        # A clock that went back makes an entry as doubtful as an old one.
        if timedelta(0) <= age < self._ttl:
            return entry
        del entries[key]
        return None

    def _put(self, entries: dict[str, _Entry[T]], key: str, value: T) -> None:
        now = self._clock.now()
        if key not in entries and len(entries) >= self._size:
            for stale in [k for k, e in entries.items() if not timedelta(0) <= now - e.at < self._ttl]:
                del entries[stale]
            if len(entries) >= self._size:
                entries.clear()
        entries[key] = _Entry(now, value)


#: Instances asked for per ListInstances page when listing a whole estate (the API's maximum).
ESTATE_PAGE = 1000


class EstateCache:
    """Every instance of one cloud, listed at most once per TTL, for the backup form's picker and the Home
    tab.

    A person typing into the picker sends a request per keystroke; they share one listing. A listing
    outlives a caller that stops waiting for it (Slack wants options within 3 s), so the next keystroke
    finds it done. The list is never used to decide anything DCS would refuse: the card shows the
    instance as ShowInstance tells, and submitting asks DCS again.
    """

    def __init__(self, dcs: DcsApi, clock: Clock, *, ttl: timedelta = INSTANCE_TTL) -> None:
        self._dcs = dcs
        self._clock = clock
        self._ttl = ttl
        self._listed: _Entry[list[Instance]] | None = None
        self._listing: asyncio.Task[list[Instance]] | None = None

    def fresh(self) -> list[Instance] | None:
        """The list of less than the TTL ago, if there is one (no call)."""
        entry = self._listed
        if entry is None:
            return None
        age = self._clock.now() - entry.at
        return entry.value if timedelta(0) <= age < self._ttl else None

    def last_known(self) -> list[Instance] | None:
        """The newest list, however old (the Home tab shows it while DCS cannot list)."""
        return None if self._listed is None else self._listed.value

    async def instances(self) -> list[Instance]:
        """The cloud's instances: the fresh list, or the one being made, or a new one. Raises what the
        port raises; the caller bounds the wait (the listing goes on without it)."""
        listed = self.fresh()
        if listed is not None:
            return listed
        if self._listing is None or self._listing.done():
            self._listing = asyncio.ensure_future(self._list_all())
            # Its failure is the waiters' to see; one no waiter is left for must not be reported as lost.
            self._listing.add_done_callback(lambda task: task.cancelled() or task.exception())
        return await asyncio.shield(self._listing)

    async def _list_all(self) -> list[Instance]:
        instances: list[Instance] = []
        while True:
            page = await self._dcs.list_instances(limit=ESTATE_PAGE, offset=len(instances))
            instances += page.instances
            if not page.instances or len(instances) >= page.total:
                break
        self._listed = _Entry(self._clock.now(), instances)
        return instances


class Estates:
    """The :class:`EstateCache` of each configured cloud, shared by everything that lists a whole estate."""

    def __init__(self, clouds: DcsClouds, clock: Clock, *, ttl: timedelta = INSTANCE_TTL) -> None:
        self._clouds = clouds
        self._clock = clock
        self._ttl = ttl
        self._estates: dict[str, EstateCache] = {}

    def of(self, cloud: str) -> EstateCache:
        """Raises ``KeyError`` for a cloud not configured."""
        estate = self._estates.get(cloud)
        if estate is None:
            estate = EstateCache(self._clouds.client(cloud), self._clock, ttl=self._ttl)
            self._estates[cloud] = estate
        return estate
