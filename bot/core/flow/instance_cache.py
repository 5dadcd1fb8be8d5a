"""A short-lived memory of instances, for resolving the instance a command names.

A burst of commands tends to name the same few instances; without it, each one costs a ListInstances
(name → id) and a ShowInstance. Entries live :data:`INSTANCE_TTL` on the workflow's clock, so a status
the bot shows is never older than that. Only RUNNING instances are kept: a person told an instance cannot
be backed up sees its recovery at the next command.

The cache serves the card only. Submitting a backup never reads it — DCS itself refuses an instance that is
not running, and the person is told — and neither do list and status, whose records are always fresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from bot.core.errors import InstanceNotFoundError
from bot.core.ports import Clock, DcsApi
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
