"""Delivers rendered messages: ``response_url`` for one person, ``chat.postMessage`` for a channel, and
``chat.update`` for the bot's own channel messages.

Whatever Slack answers — an error, an HTML page, an empty or cut-off body, nothing, or nothing in time —
the notifier raises nothing: a message Slack did not take is "not delivered" (False or None), and the
flow decides whether to try again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.ports import Delivered, UpdateResult
from bot.core.rules.messages import Notice, Reply
from bot.slack.blocks import Message, render_notice, render_reply
from bot.slack.errors import SlackCallError, call_slack
from bot.slack.webhook import ResponseUrlPoster

log = logging.getLogger(__name__)

# chat.postMessage errors after which the response_url (which works in any conversation the command
# came from) is the only way left to reach the channel.
_CANNOT_POST = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action"})
# chat.update errors after which the message will never take an update.
_CANNOT_UPDATE = frozenset(
    {
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
    }
)


class SlackNotifier:
    def __init__(
        self,
        client: AsyncWebClient,
        session: aiohttp.ClientSession,
        retry_handlers: list[AsyncRetryHandler],
        on_error: Callable[[str, str], None] | None = None,
        *,
        show_clouds: bool = False,
    ) -> None:
        """``on_error(method, error)`` hears of every Slack API error (for metrics); ``show_clouds``:
        messages name each instance's cloud (several are configured)."""
        self._show_clouds = show_clouds
        self._client = client
        # Updates wait out a rate limit by skipping a turn (bot.core.flow.living), not by sleeping in here.
        self._updates = AsyncWebClient(
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            session=client.session,
            retry_handlers=[
                h for h in client.retry_handlers if not isinstance(h, AsyncRateLimitErrorRetryHandler)
            ],
        )
        self._poster = ResponseUrlPoster(session, retry_handlers)
        self._on_error = on_error

    async def reply(self, response_url: str, reply: Reply, *, replace_original: bool = False) -> bool:
        return await self._respond(
            response_url,
            render_reply(reply, show_clouds=self._show_clouds),
            replace_original=replace_original,
        )

    async def whisper(self, channel_id: str, user_id: str, reply: Reply) -> bool:
        """Shows ``reply`` to ``user_id`` alone in ``channel_id`` (``chat.postEphemeral``), for answers with
        no response_url to go through (a form opened other than by a command)."""
        message = render_reply(reply, show_clouds=self._show_clouds)
        try:
            await call_slack(
                "chat.postEphemeral",
                self._client.chat_postEphemeral(
                    channel=channel_id, user=user_id, text=message.text, blocks=message.blocks
                ),
                timeout=self._client.timeout,
            )
        except SlackCallError as error:
            if self._on_error is not None:
                self._on_error("chat.postEphemeral", error.failure.reason)
            log.error("could not answer %s in %s: %s", user_id, channel_id, error.failure)
            return False
        return True

    async def announce(
        self,
        channel_id: str,
        notice: Notice,
        *,
        thread_ts: str | None = None,
        fallback_response_url: str | None = None,
        broadcast: bool = False,
    ) -> Delivered | None:
        message = render_notice(notice, show_clouds=self._show_clouds)
        # None leaves the parameter out, as the bot sent it before broadcasts.
        reply_broadcast = True if broadcast and thread_ts is not None else None
        try:
            response = await call_slack(
                "chat.postMessage",
                self._client.chat_postMessage(
                    channel=channel_id,
                    text=message.text,
                    blocks=message.blocks,
                    thread_ts=thread_ts,
                    unfurl_links=False,
                    unfurl_media=False,
                    reply_broadcast=reply_broadcast,
                ),
                timeout=self._client.timeout,
            )
        except SlackCallError as error:
            failure = error.failure
            if self._on_error is not None:
                self._on_error("chat.postMessage", failure.reason)
            if failure.reason in _CANNOT_POST and fallback_response_url:
                log.info(
                    "chat.postMessage to %s failed (%s); answering through the response_url",
                    channel_id,
                    failure.reason,
                )
                if await self._respond(fallback_response_url, message, in_channel=True):
                    return Delivered()
                return None
            log.error("could not post to %s: %s", channel_id, failure)
            return None
        ts = response.data.get("ts") if isinstance(response.data, dict) else None
        return Delivered(ts if isinstance(ts, str) else None)

    async def update_message(self, channel_id: str, ts: str, content: Notice | Reply) -> UpdateResult:
        if isinstance(content, Notice):
            message = render_notice(content, show_clouds=self._show_clouds)
        else:
            message = render_reply(content, show_clouds=self._show_clouds)
        try:
            await call_slack(
                "chat.update",
                self._updates.chat_update(
                    channel=channel_id, ts=ts, text=message.text, blocks=message.blocks
                ),
                timeout=self._client.timeout,
            )
        except SlackCallError as error:
            failure = error.failure
            if self._on_error is not None:
                self._on_error("chat.update", failure.reason)
            if failure.reason in _CANNOT_UPDATE:
                return UpdateResult("gone")
            log.warning("could not update message %s in %s: %s", ts, channel_id, failure)
            return UpdateResult("refused", failure.retry_after)
        return UpdateResult("updated")

    async def _respond(
        self, response_url: str, message: Message, *, replace_original: bool = False, in_channel: bool = False
    ) -> bool:
        try:
            answer = await call_slack(
                "response_url",
                self._poster.post(
                    response_url,
                    {
                        "text": message.text,
                        "blocks": message.blocks,
                        "response_type": "in_channel" if in_channel else "ephemeral",
                        "replace_original": replace_original,
                    },
                ),
                timeout=self._client.timeout,
            )
        except SlackCallError as error:
            # The URL is a secret for a while: it is never logged.
            log.error("could not answer through the response_url: %s", error.failure)
            return False
        if answer.status != 200:
            log.warning("response_url answered HTTP %s: %r", answer.status, answer.body[:100])
            return False
        return True
