"""Bolt's authorization of each request, from what the start-up check learnt: no Slack call per request.

Left to itself, Bolt asks ``auth.test`` on the first request it serves, and any failure of that call —
a gateway's HTML page, an empty or cut-off body, a dropped connection — answers the person's command with
"your installation … is no longer available. Please reinstall this app", or fails it with HTTP 500.

Instead the bot hands Bolt an ``authorize`` function built from the start-up check's answer (the bot user,
the bot, the workspace). When that check could not reach Slack, the first request asks ``auth.test`` once
more, through :func:`~bot.slack.errors.call_slack`, and keeps the answer. While Slack still cannot tell,
a request goes through on the bot token alone: the bot's user id is then unknown, which only matters to
Bolt's filter of the bot's own events, and the bot listens to no events (commands and clicks only).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack.errors import SlackCallError, call_slack

log = logging.getLogger(__name__)

# A request waits no longer than this for auth.test: its ack is due within Slack's 3 seconds.
ASK_TIMEOUT = 1.0

Authorize = Callable[..., Awaitable[AuthorizeResult]]


@dataclass(frozen=True)
class BotIdentity:
    """Who the bot token belongs to, as ``auth.test`` told."""

    user_id: str | None
    bot_id: str | None
    team_id: str | None
    team: str | None = None
    enterprise_id: str | None = None
    scopes: str | None = None

    @classmethod
    def from_auth_test(cls, answer: AsyncSlackResponse) -> BotIdentity:
        headers = answer.headers
        scopes = headers.get("x-oauth-scopes") if isinstance(headers, Mapping) else None
        return cls(
            user_id=_text(answer.get("user_id")),
            bot_id=_text(answer.get("bot_id")),
            team_id=_text(answer.get("team_id")),
            team=_text(answer.get("team")),
            enterprise_id=_text(answer.get("enterprise_id")),
            scopes=_text(scopes),
        )


class BotAuthorization:
    """Knows who the bot is (once told, or once it could ask) and authorizes each request with it."""

    def __init__(self, slack: AsyncWebClient, *, timeout: float = ASK_TIMEOUT) -> None:
        self._slack = slack
        self._timeout = timeout
        self.identity: BotIdentity | None = None
        self._refused = False
        self._asking: asyncio.Future[BotIdentity | None] | None = None

    def learn(self, identity: BotIdentity | None) -> None:
        """Keeps what the start-up check learnt (None: it could not tell)."""
        self.identity = identity

    def bolt_authorize(self) -> Authorize:
        """The function for ``AsyncApp(authorize=…)``; Bolt passes arguments by their names."""

        async def authorize(
            enterprise_id: str | None, team_id: str | None, user_id: str | None
        ) -> AuthorizeResult:
            return await self.authorize(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id)

        return authorize

    async def authorize(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        """Always a result with the bot token, so Bolt never tells anyone to reinstall the app."""
        identity = await self._known_identity()
        return AuthorizeResult(
            enterprise_id=identity.enterprise_id if identity else enterprise_id,
            team_id=identity.team_id if identity else team_id,
            team=identity.team if identity else None,
            bot_user_id=identity.user_id if identity else None,
            bot_id=identity.bot_id if identity else None,
            bot_token=self._slack.token,
            bot_scopes=identity.scopes if identity else None,
            user_id=user_id,
        )

    async def _known_identity(self) -> BotIdentity | None:
        if self.identity is not None or self._refused:
            return self.identity
        # Requests arriving together share one question.
        if self._asking is None:
            self._asking = asyncio.ensure_future(self._ask())
        return await asyncio.shield(self._asking)

    async def _ask(self) -> BotIdentity | None:
        try:
            answer = await call_slack("auth.test", self._slack.auth_test(), timeout=self._timeout)
        except SlackCallError as error:
            failure = error.failure
            if failure.refuses_token:
                self._refused = True
                log.error(
                    "Slack refused the bot token (%s); restart with a valid SLACK_BOT_TOKEN", failure.reason
                )
            else:
                log.warning("could not ask Slack who the bot is (%s); serving on the token", failure.summary)
            return None
        finally:
            self._asking = None
        self.identity = BotIdentity.from_auth_test(answer)
        log.info("Slack accepted the bot token: bot user %s", self.identity.user_id or "?")
        return self.identity


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
