"""Slack user-group membership: cached per group, one look-up at a time per group, and kept through
Slack's passing failures.

``usergroups.users.list`` is a Tier 2 method (about 20 calls a minute), so members are cached per group
for :data:`MEMBERS_TTL`, and callers that want a group while it is being looked up wait for that one
call instead of making their own. When a look-up fails for a passing reason (a timeout, a 5xx, a rate
limit, an answer that is not Slack's JSON) the last known members are served instead, with a log line,
for up to :data:`STALE_LIMIT`. A definite refusal (``plan_upgrade_required``, ``missing_scope`` …) drops
what was known of the group and fails closed; it is remembered for :data:`REFUSAL_TTL`, for that group
only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.ports import GroupLookupError
from bot.slack.errors import UNREADABLE, SlackCallError, SlackFailure, call_slack

log = logging.getLogger(__name__)

METHOD = "usergroups.users.list"
#: How long members read from Slack count as current.
MEMBERS_TTL = 120.0
#: How old the last known members may be and still stand in for a look-up that failed in passing.
STALE_LIMIT = 3600.0
#: How long a definite refusal is remembered before Slack is asked about the group again.
REFUSAL_TTL = 30.0


@dataclass(frozen=True)
class _Known:
    members: frozenset[str]
    at: float


class SlackGroupDirectory:
    def __init__(self, client: AsyncWebClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self._known: dict[str, _Known] = {}
        self._refused: dict[str, tuple[float, GroupLookupError]] = {}
        self._in_flight: dict[str, asyncio.Task[frozenset[str]]] = {}
        # Slack's Retry-After holds for the method, not one group: no look-ups before this moment.
        self._quiet_until = 0.0

    async def members(self, group_ids: frozenset[str]) -> dict[str, frozenset[str]]:
        ordered = sorted(group_ids)
        results = await asyncio.gather(*(self._members_of(g) for g in ordered), return_exceptions=True)
        failures: list[GroupLookupError] = []
        for result in results:
            if isinstance(result, GroupLookupError):
                failures.append(result)
            elif isinstance(result, BaseException):
                raise result
        if failures:
            # One refusal is enough to fail closed; otherwise every failure was a passing one.
            raise next((f for f in failures if not f.passing), failures[0])
        return {g: r for g, r in zip(ordered, results, strict=True) if isinstance(r, frozenset)}

    async def _members_of(self, group_id: str) -> frozenset[str]:
        now = self._clock()
        known = self._known.get(group_id)
        if known is not None and now - known.at < MEMBERS_TTL:
            return known.members
        refused = self._refused.get(group_id)
        if refused is not None and now - refused[0] < REFUSAL_TTL:
            raise refused[1]
        if now < self._quiet_until:
            return self._last_known(group_id, GroupLookupError("ratelimited", passing=True))
        try:
            # Shielded: a caller that gives up must not cancel the look-up others are waiting for.
            return await asyncio.shield(self._look_up(group_id))
        except GroupLookupError as error:
            if not error.passing:
                raise
            return self._last_known(group_id, error)

    def _look_up(self, group_id: str) -> asyncio.Task[frozenset[str]]:
        """The look-up of ``group_id`` under way, or a new one."""
        task = self._in_flight.get(group_id)
        if task is None:
            task = asyncio.create_task(self._fetch(group_id), name=f"{METHOD} {group_id}")
            self._in_flight[group_id] = task
            task.add_done_callback(lambda done: self._finished(group_id, done))
        return task

    def _finished(self, group_id: str, task: asyncio.Task[frozenset[str]]) -> None:
        if self._in_flight.get(group_id) is task:
            del self._in_flight[group_id]
        if not task.cancelled():
            task.exception()  # read here too, in case every caller gave up waiting

    def _last_known(self, group_id: str, error: GroupLookupError) -> frozenset[str]:
        known = self._known.get(group_id)
        now = self._clock()
        if known is None or now - known.at > STALE_LIMIT:
            raise error
        log.warning(
            "Slack could not list user group %s (%s); using its last known members, read %.0f s ago",
            group_id,
            error.reason,
            now - known.at,
        )
        return known.members

    async def _fetch(self, group_id: str) -> frozenset[str]:
        try:
            response = await call_slack(
                METHOD, self._client.usergroups_users_list(usergroup=group_id), timeout=self._client.timeout
            )
        except SlackCallError as error:
            failure = error.failure
            if failure.reason == "no_such_subteam":
                log.warning("the policy names user group %s, which Slack does not know", group_id)
                return self._keep(group_id, frozenset())
            lookup_error = GroupLookupError(failure.summary, passing=failure.passing)
            if failure.passing:
                if failure.retry_after:
                    self._quiet_until = max(self._quiet_until, self._clock() + failure.retry_after)
            else:
                log.warning("Slack refused to list user group %s: %s", group_id, failure)
                self._known.pop(group_id, None)
                self._refused[group_id] = (self._clock(), lookup_error)
            raise lookup_error from None
        users = response.data.get("users") if isinstance(response.data, dict) else None
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            raise GroupLookupError(SlackFailure(UNREADABLE, passing=True).summary, passing=True)
        return self._keep(group_id, frozenset(users))

    def _keep(self, group_id: str, members: frozenset[str]) -> frozenset[str]:
        self._known[group_id] = _Known(members, self._clock())
        self._refused.pop(group_id, None)
        return members
