"""Slack user-group membership, cached, failing closed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.ports import GroupLookupError

log = logging.getLogger(__name__)

# usergroups.users.list is a Tier 2 method (about 20 calls a minute): cache answers, and failures briefly.
MEMBERS_TTL = 120.0
FAILURE_TTL = 30.0


class SlackGroupDirectory:
    def __init__(self, client: AsyncWebClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._failure: tuple[float, str] | None = None

    async def members(self, group_ids: frozenset[str]) -> dict[str, frozenset[str]]:
        now = self._clock()
        if self._failure is not None and now - self._failure[0] < FAILURE_TTL:
            raise GroupLookupError(self._failure[1])
        stale = sorted(
            g for g in group_ids if g not in self._members or now - self._members[g][0] >= MEMBERS_TTL
        )
        fetched = await asyncio.gather(*(self._fetch(g) for g in stale), return_exceptions=True)
        for group_id, result in zip(stale, fetched, strict=True):
            if isinstance(result, GroupLookupError):
                self._failure = (now, str(result))
                raise result
            if isinstance(result, BaseException):
                raise result
            self._members[group_id] = (now, result)
        self._failure = None
        return {g: self._members[g][1] for g in group_ids}

    async def _fetch(self, group_id: str) -> frozenset[str]:
        try:
            response = await self._client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as error:
            reason = str(error.response.get("error", "unknown_error"))
            if reason == "no_such_subteam":
                log.warning("the policy names user group %s, which Slack does not know", group_id)
                return frozenset()
            raise GroupLookupError(reason) from None
        except (aiohttp.ClientError, TimeoutError):
            raise GroupLookupError("Slack could not be reached") from None
        users = response.get("users") or []
        return frozenset(str(u) for u in users)
