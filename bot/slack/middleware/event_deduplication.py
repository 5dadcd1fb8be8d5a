"""An Events API event is handled once, however often Slack delivers it.

Slack delivers an event again (with ``X-Slack-Retry-Num``) when the first delivery was not acknowledged
within three seconds, and with several replicas the redelivery may reach another one. Deliveries are told
apart by the body's ``event_id`` alone, whatever the retry headers say: a redelivery is acknowledged and
reaches no listener. So an event is handled at most once: should the first delivery's handling fail, a
redelivery does not try again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.core.ports import EventDeliveries

log = logging.getLogger(__name__)


def event_id_of(body: object) -> str | None:
    """The ``event_id`` of an Events API ``event_callback`` body, or None for anything else."""
    if not isinstance(body, dict) or body.get("type") != "event_callback":
        return None
    event_id = body.get("event_id")
    return event_id if isinstance(event_id, str) and event_id else None


class EventDeduplication(AsyncMiddleware):
    """Asks ``deliveries`` whether an event was seen before; ``on_redelivery`` counts each one that was."""

    def __init__(
        self,
        deliveries: EventDeliveries,
        now: Callable[[], datetime],
        on_redelivery: Callable[[], None] = lambda: None,
    ) -> None:
        self._deliveries = deliveries
        self._now = now
        self._on_redelivery = on_redelivery

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        # Bolt passes it by this name.
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        event_id = event_id_of(req.body)
        if event_id is None:
            return await next()
        try:
            first = await self._deliveries.first_delivery(event_id, self._now())
        except Exception as error:  # the store's own errors, whichever database it is
            # Unsure, the event is handled: handling it twice is better than losing it.
            log.warning(
                "could not tell whether event %s was delivered before (%s); handling it",
                event_id,
                type(error).__name__,
            )
            return await next()
        if first:
            return await next()
        self._on_redelivery()
        log.debug("event %s delivered again%s; acknowledged, not handled again", event_id, _retry(req))
        return await req.context.ack()


def _retry(req: AsyncBoltRequest) -> str:
    """What Slack's retry headers say (HTTP mode), as a fragment of the log line."""
    number = req.headers.get("x-slack-retry-num")
    reason = req.headers.get("x-slack-retry-reason")
    if not number:
        return ""
    return f" (retry {number[0]}" + (f", {reason[0]})" if reason else ")")
