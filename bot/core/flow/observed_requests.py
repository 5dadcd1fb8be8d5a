"""A :class:`~bot.core.ports.RequestStore` that tells an observer of every request it took: added, or moved
to another state by a transition that won. The flow's one hook for "a request changed": whoever changes a
request (a click, the submission, the tracker, the housekeeping) goes through the store, so nothing needs
to poll and no step of the flow needs to remember to tell.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from bot.core.ports import RequestObserver, RequestStore
from bot.core.rules.backup_request import BackupRequest, RequestEvent, RequestState
from bot.core.rules.pick_offer import PickOffer

log = logging.getLogger(__name__)


class ObservedRequests:
    def __init__(self, store: RequestStore, observer: RequestObserver) -> None:
        self._store = store
        self._observer = observer

    def _tell(self, request: BackupRequest) -> None:
        try:
            self._observer.changed(request)
        except Exception:  # an observer's bug must not undo or fail a change the store already took
            log.exception("the observer of request %s failed", request.request_id)

    async def add(self, request: BackupRequest) -> None:
        await self._store.add(request)
        self._tell(request)

    async def get(self, request_id: str) -> BackupRequest | None:
        return await self._store.get(request_id)

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
        changed = await self._store.transition(
            request_id, event, now=now, unexpired=unexpired, expired=expired, orphaned=orphaned, **changes
        )
        if changed is not None:
            self._tell(changed)
        return changed

    async def update(self, request_id: str, **changes: object) -> None:
        await self._store.update(request_id, **changes)

    async def in_states(self, *states: RequestState) -> list[BackupRequest]:
        return await self._store.in_states(*states)

    async def by_backup_id(self, backup_id: str) -> BackupRequest | None:
        return await self._store.by_backup_id(backup_id)

    async def past_expiry(self, now: datetime, *, limit: int = 100) -> list[BackupRequest]:
        return await self._store.past_expiry(now, limit=limit)

    async def prune(self, before: datetime) -> int:
        return await self._store.prune(before)

    async def owing_notices(self) -> list[BackupRequest]:
        return await self._store.owing_notices()

    async def requested_by(self, user_id: str, *, limit: int = 10) -> list[BackupRequest]:
        return await self._store.requested_by(user_id, limit=limit)

    async def offer_picks(self, offer: PickOffer, picks: Sequence[str]) -> None:
        await self._store.offer_picks(offer, picks)

    async def offered(self, user_id: str, channel_id: str, pick: str, *, since: datetime) -> PickOffer | None:
        return await self._store.offered(user_id, channel_id, pick, since=since)
