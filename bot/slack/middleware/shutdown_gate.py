"""While the bot is shutting down it takes no new work: a command or a click gets one polite answer and
reaches no listener. Other requests pass as they would."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.payload_utils import is_block_actions, is_slash_command
from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)

RESTARTING = "The bot is restarting and takes no new work right now. Please try again in a minute."


class ShutdownGate(AsyncMiddleware):
    """``accepting`` tells whether the bot still takes work; once it says no, the gate answers."""

    def __init__(self, accepting: Callable[[], bool]) -> None:
        self._accepting = accepting

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        # Bolt passes it by this name.
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        if self._accepting():
            return await next()
        if is_slash_command(req.body):
            # The ack is the answer: Slack shows its text to the person who typed the command.
            return await req.context.ack(text=RESTARTING)
        if is_block_actions(req.body):
            acked = await req.context.ack()
            respond = req.context.respond
            if respond is not None:
                try:
                    await respond(text=RESTARTING, replace_original=False)
                except (aiohttp.ClientError, TimeoutError) as error:
                    log.warning("could not tell the clicker the bot is restarting (%s)", error)
            return acked
        return await next()
