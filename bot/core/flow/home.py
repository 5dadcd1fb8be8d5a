"""What one person's Home tab shows, gathered from the policy, DCS and the store (:class:`HomeContent`).

Opening the Home tab must cost DCS little, however big the estate: each cloud's instance list is the one
the backup form's picker shares (:class:`~bot.core.flow.instance_cache.Estates`, listed at most once per
its TTL), and the backup records behind "last successful backup" are read only for the instances
the tab shows (at most :data:`SHOWN_INSTANCES`), a few at a time, each kept for :data:`RECORDS_TTL` — and
updated at once when a backup the bot followed succeeds. A cloud DCS cannot list just now is shown by its
last known list, or as unavailable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.core.errors import DcsError
from bot.core.flow.context import actor_of, client_of, describe
from bot.core.flow.instance_cache import Estates
from bot.core.ports import Clock, DcsClouds, GroupDirectory, RequestStore
from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.core.rules.home import (
    RUNNING_STATES,
    HomeCloud,
    HomeInstance,
    HomeNote,
    HomeSnapshot,
    Where,
    is_stale,
    permitted,
    stale_window,
    waits_for,
)
from bot.core.rules.instances import BackupStatus, Instance
from bot.core.rules.policy import Policy, ref_of
from bot.core.rules.watching import last_success

log = logging.getLogger(__name__)

#: Instances a Home tab lists at most (over all clouds); the rest are counted ("and 460 more").
SHOWN_INSTANCES = 40
#: How long an instance's last successful backup serves Home tabs before its records are read again.
RECORDS_TTL = timedelta(minutes=5)
#: Instances whose records are read at once while a Home tab is gathered.
RECORDS_CONCURRENCY = 4
#: Instances whose last successful backup is remembered at most; beyond, the oldest are forgotten.
RECORDS_KEPT = 2000
#: The person's own requests a Home tab lists.
RECENT_REQUESTS = 5
# DCS keeps only the 24 newest records of an instance, so one page shows all of them.
_RECORDS_PAGE = 50


@dataclass(frozen=True)
class _LastSuccess:
    at: datetime
    ended: datetime | None


class HomeContent:
    def __init__(
        self,
        *,
        clouds: DcsClouds,
        requests: RequestStore,
        groups: GroupDirectory,
        policy: Callable[[], Policy],
        clock: Clock,
        shown: int = SHOWN_INSTANCES,
        estates: Estates | None = None,
    ) -> None:
        """``estates``: the clouds' instance lists, shared with the backup form (none: its own)."""
        self._clouds = clouds
        self._requests = requests
        self._groups = groups
        self._policy = policy
        self._clock = clock
        self._shown = shown
        self._estates = estates or Estates(clouds, clock)
        self._last_success: dict[str, _LastSuccess] = {}

    def saw(self, request: BackupRequest) -> None:
        """Learns from a request that changed: a backup the bot followed to success is the instance's
        newest successful one, without asking DCS."""
        if (
            request.state == RequestState.FINISHED
            and request.backup_status == BackupStatus.SUCCEED
            and request.finished_at is not None
        ):
            self._remember(request.instance_id, request.finished_at)

    async def snapshot(self, user_id: str, notes: Sequence[HomeNote] = ()) -> HomeSnapshot:
        policy = self._policy()
        now = self._clock.now()
        # Groups are not per channel; the channels are decided per instance (rules.home.backup_channels).
        actor = await actor_of(self._groups, policy, user_id, "")
        if actor.groups_passing:
            log.info("Home tab of %s shown without rules granted through groups for now", user_id)
        listed = await asyncio.gather(*(self._instances_of(cloud) for cloud in self._clouds.names))
        clouds: list[HomeCloud] = []
        budget = self._shown
        for cloud, (instances, problem) in zip(self._clouds.names, listed, strict=True):
            allowed = permitted(policy, actor, instances)
            chosen = allowed[: max(0, budget)]
            budget -= len(chosen)
            shown = await self._with_last_success(policy, chosen, now)
            clouds.append(HomeCloud(cloud, tuple(shown), len(allowed), problem))
        permitted_ids = {i.instance.instance_id for cloud in clouds for i in cloud.shown}
        running = [
            r
            for r in await self._requests.in_states(*RUNNING_STATES)
            if r.requester_id == user_id or r.instance_id in permitted_ids
        ]
        awaiting = [
            r
            for r in await self._requests.in_states(RequestState.AWAITING_APPROVAL)
            if waits_for(r, user_id, actor.groups, now)
        ]
        recent = await self._requests.requested_by(user_id, limit=RECENT_REQUESTS)
        return HomeSnapshot(
            user_id=user_id,
            at=now,
            clouds=tuple(clouds),
            running=tuple(running),
            awaiting=tuple(awaiting),
            recent=tuple(recent),
            notes=tuple(notes),
            groups=actor.groups,
            groups_unknown=actor.groups_unknown,
            multi_cloud=len(self._clouds.names) > 1,
        )

    # --- the estate ---------------------------------------------------------------------------------

    async def _instances_of(self, cloud: str) -> tuple[tuple[Instance, ...], str | None]:
        """The instances of ``cloud`` (its shared list), and why they are missing if so: while DCS cannot
        list them, the last known list is shown."""
        estate = self._estates.of(cloud)
        try:
            listed = await estate.instances()
        except DcsError as error:
            last = estate.last_known()
            if last is None:
                return (), describe(error)
            listed = last
        return tuple(replace(instance, cloud=cloud) for instance in listed), None

    async def _with_last_success(
        self, policy: Policy, chosen: Sequence[tuple[Instance, Where]], now: datetime
    ) -> list[HomeInstance]:
        limit = asyncio.Semaphore(RECORDS_CONCURRENCY)

        async def one(instance: Instance, where: Where) -> HomeInstance:
            async with limit:
                known, ended = await self._last_success_of(instance, now)
            window = stale_window(policy.watch, ref_of(instance))
            stale = known and is_stale(window, ended, now)
            return HomeInstance(instance, where, ended, records_known=known, stale=stale)

        return list(await asyncio.gather(*(one(instance, where) for instance, where in chosen)))

    async def _last_success_of(self, instance: Instance, now: datetime) -> tuple[bool, datetime | None]:
        """Whether the instance's records could be read, and the end of its newest successful backup."""
        known = self._last_success.get(instance.instance_id)
        if known is not None and timedelta(0) <= now - known.at < RECORDS_TTL:
            return True, known.ended
        try:
            dcs = client_of(self._clouds, instance.cloud)
            page = await dcs.list_backups(instance.instance_id, limit=_RECORDS_PAGE)
        except DcsError as error:
            log.info("records of %s unknown for the Home tab: %s", instance.instance_id, error)
            return (known is not None), (known.ended if known else None)
        ended = last_success(page.records)
        self._remember(instance.instance_id, ended, now)
        return True, ended

    def _remember(self, instance_id: str, ended: datetime | None, at: datetime | None = None) -> None:
        known = self._last_success.get(instance_id)
        if known is not None and known.ended is not None and ended is not None and ended < known.ended:
            ended = known.ended
        self._last_success.pop(instance_id, None)
        if len(self._last_success) >= RECORDS_KEPT:
            del self._last_success[next(iter(self._last_success))]
        self._last_success[instance_id] = _LastSuccess(at or self._clock.now(), ended)
