"""Backup requests, with atomic state transitions (SQLite or PostgreSQL, through :mod:`bot.store.engine`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from bot.core.ports import Claimant
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
from bot.core.rules.instances import BackupFormat
from bot.core.rules.pick_offer import PickOffer
from bot.store.claims import orphaned_condition
from bot.store.database import maybe_time, to_db_time
from bot.store.db_clock import db_now_plus
from bot.store.engine import UNIQUE_VIOLATIONS, Database, Row
from bot.store.pick_offers import SqlPickOffers

_COLUMNS = [f.name for f in fields(BackupRequest)]
_WAITING = (RequestState.PENDING, RequestState.AWAITING_APPROVAL)
# Rows deleted per statement when pruning, so that no single write holds the database for long.
_PRUNE_BATCH = 500
_TIME_COLUMNS = {
    "created_at",
    "expires_at",
    "updated_at",
    "submitted_at",
    "finished_at",
    "sent_at",
    "answer_lost_at",
    "notice_refused_since",
}
_UNSETTLED = ", ".join(f"'{state}'" for state in sorted(UNSETTLED_STATES))


def _to_row(request: BackupRequest) -> dict[str, Any]:
    return {name: _encode(name, getattr(request, name)) for name in _COLUMNS}


def _encode(name: str, value: object) -> object:
    if name in _TIME_COLUMNS and isinstance(value, datetime):
        return to_db_time(value)
    if name == "approvers":
        return json.dumps(list(value))  # type: ignore[call-overload]
    if name == "instance_tags":
        return None if value is None else json.dumps([list(pair) for pair in value])  # type: ignore[attr-defined]
    return value


def _from_row(row: Row) -> BackupRequest:
    data: dict[str, Any] = {name: row[name] for name in _COLUMNS}
    for name in _TIME_COLUMNS:
        data[name] = maybe_time(data[name])
    data["approvers"] = tuple(json.loads(data["approvers"]))
    tags = data["instance_tags"]
    data["instance_tags"] = None if tags is None else tuple((key, value) for key, value in json.loads(tags))
    data["state"] = RequestState(data["state"])
    data["backup_format"] = BackupFormat(data["backup_format"])
    return BackupRequest(**data)


class SqlRequestStore:
    def __init__(self, database: Database, claimant: Claimant | None = None) -> None:
        """With a ``claimant``, the move into ``submitting`` records its claim (see bot.store.claims)."""
        self._db = database
        self._claimant = claimant
        self._offers = SqlPickOffers(database)

    async def add(self, request: BackupRequest) -> None:
        row = _to_row(request)
        names = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)
        await self._db.execute(f"INSERT INTO requests ({names}) VALUES ({marks})", row)

    async def adopt_cloudless(self, cloud: str) -> int:
        """Gives the requests made before requests recorded their cloud (a database of an earlier release)
        the one cloud that release served; returns how many."""
        return await self._db.execute(
            "UPDATE requests SET cloud = :cloud WHERE cloud IS NULL", {"cloud": cloud}
        )

    async def get(self, request_id: str) -> BackupRequest | None:
        row = await self._db.fetch_one(
            "SELECT * FROM requests WHERE request_id = :request_id", {"request_id": request_id}
        )
        return None if row is None else _from_row(row)

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
        sources = sorted(sources_of(event))
        targets = {next_state(source, event) for source in sources}
        if len(targets) != 1:
            raise ValueError(f"event {event} leads to several states: {targets}")
        values = {name: _encode(name, value) for name, value in changes.items() if name in _COLUMNS}
        if len(values) != len(changes):
            raise ValueError(f"unknown request fields: {set(changes) - set(values)}")
        target = targets.pop()
        values |= {"state": target, "updated_at": to_db_time(now)}
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        claim: dict[str, object] = {}
        if self._claimant is not None and target == RequestState.SUBMITTING:
            until = db_now_plus(self._db.dialect, "claim_ttl")
            assignments += f", claimed_by = :claimed_by, claim_until = {until}"
            claim = {"claimed_by": self._claimant.replica, "claim_ttl": float(self._claimant.ttl)}
        placeholders = ", ".join(f":source{index}" for index in range(len(sources)))
        condition = f"request_id = :request_id AND state IN ({placeholders})"
        if unexpired:
            condition += " AND expires_at > :now"
        if expired:
            condition += " AND expires_at <= :now"
        if orphaned:
            # Judged again here, not only by the look that found the orphan: its owner may have renewed
            # the claim since, and then the submission is still its own.
            condition += f" AND {orphaned_condition(self._db.dialect)}"
            claim["replica"] = "" if self._claimant is None else self._claimant.replica
        if guards_instance(event):
            # At most one unsettled request per instance, checked in the same statement that takes it.
            condition += (
                " AND NOT EXISTS (SELECT 1 FROM requests AS other"
                " WHERE other.instance_id = requests.instance_id"
                f" AND other.state IN ({_UNSETTLED}) AND other.request_id != requests.request_id)"
            )
        parameters = values | {f"source{index}": str(s) for index, s in enumerate(sources)}
        parameters |= {"request_id": request_id, "now": to_db_time(now)} | claim
        # A single conditional UPDATE … RETURNING is the atomic compare-and-set: of several concurrent
        # clicks exactly one sees a row come back.
        try:
            row = await self._db.fetch_one(
                f"UPDATE requests SET {assignments} WHERE {condition} RETURNING *", parameters
            )
        except UNIQUE_VIOLATIONS:
            # PostgreSQL: another request of the instance became unsettled in a concurrent transaction,
            # after this statement's NOT EXISTS looked; the partial unique index refused the second.
            return None
        return None if row is None else _from_row(row)

    async def update(self, request_id: str, **changes: object) -> None:
        values = {name: _encode(name, value) for name, value in changes.items() if name in _COLUMNS}
        if len(values) != len(changes) or "state" in values:
            raise ValueError("update() sets plain fields; states change through transition()")
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        await self._db.execute(
            f"UPDATE requests SET {assignments} WHERE request_id = :request_id",
            values | {"request_id": request_id},
        )

    async def in_states(self, *states: RequestState) -> list[BackupRequest]:
        marks = ", ".join(f":state{index}" for index in range(len(states)))
        rows = await self._db.fetch_all(
            f"SELECT * FROM requests WHERE state IN ({marks}) ORDER BY created_at",
            {f"state{index}": str(state) for index, state in enumerate(states)},
        )
        return [_from_row(row) for row in rows]

    async def by_backup_id(self, backup_id: str) -> BackupRequest | None:
        row = await self._db.fetch_one(
            "SELECT * FROM requests WHERE backup_id = :backup_id", {"backup_id": backup_id}
        )
        return None if row is None else _from_row(row)

    async def past_expiry(self, now: datetime, *, limit: int = 100) -> list[BackupRequest]:
        rows = await self._db.fetch_all(
            "SELECT * FROM requests WHERE state IN (:waiting0, :waiting1) AND expires_at <= :now"
            " ORDER BY expires_at LIMIT :limit",
            {
                "waiting0": str(_WAITING[0]),
                "waiting1": str(_WAITING[1]),
                "now": to_db_time(now),
                "limit": limit,
            },
        )
        return [_from_row(row) for row in rows]

    async def prune(self, before: datetime) -> int:
        finals = {f"final{index}": str(state) for index, state in enumerate(sorted(FINAL_STATES))}
        marks = ", ".join(f":{name}" for name in finals)
        # The moment a request reached its final state: finished_at, or the time of its last transition.
        query = (
            "DELETE FROM requests WHERE request_id IN (SELECT request_id FROM requests"
            f" WHERE state IN ({marks}) AND notice_due IS NULL"
            " AND coalesce(finished_at, updated_at, created_at) < :before LIMIT :batch)"
        )
        parameters = finals | {"before": to_db_time(before), "batch": _PRUNE_BATCH}
        deleted = 0
        while True:
            count = await self._db.execute(query, parameters)
            deleted += count
            if count < _PRUNE_BATCH:
                break
        await self._offers.prune(before)
        return deleted

    async def owing_notices(self) -> list[BackupRequest]:
        rows = await self._db.fetch_all(
            "SELECT * FROM requests WHERE notice_due IS NOT NULL ORDER BY created_at"
        )
        return [_from_row(row) for row in rows]

    async def requested_by(self, user_id: str, *, limit: int = 10) -> list[BackupRequest]:
        rows = await self._db.fetch_all(
            "SELECT * FROM requests WHERE requester_id = :user_id"
            " ORDER BY created_at DESC, request_id LIMIT :limit",
            {"user_id": user_id, "limit": limit},
        )
        return [_from_row(row) for row in rows]

    async def offer_picks(self, offer: PickOffer, picks: Sequence[str]) -> None:
        await self._offers.offer(offer, picks)

    async def offered(self, user_id: str, channel_id: str, pick: str, *, since: datetime) -> PickOffer | None:
        return await self._offers.offered(user_id, channel_id, pick, since=since)
