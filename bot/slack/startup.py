"""The start-up check of the bot token: ``auth.test`` must accept it before the bot serves anything.

A token Slack refuses stops start-up with one line naming ``SLACK_BOT_TOKEN``. Slack out of reach, or
answering anything else, only earns a warning: the bot starts anyway and Slack may be back by the time
someone types a command. Who the token belongs to goes to Bolt's authorization (bot.slack.authorization),
so that no request has to ask Slack again.
"""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import ConfigError
from bot.slack.authorization import BotIdentity
from bot.slack.errors import SlackCallError, call_slack

log = logging.getLogger(__name__)

# Start-up waits no longer than this for Slack's answer.
CHECK_TIMEOUT = 10.0


async def check_bot_token(slack: AsyncWebClient, *, timeout: float = CHECK_TIMEOUT) -> BotIdentity | None:
    """Who the bot token belongs to; raises :class:`ConfigError` when Slack refuses the token; logs a
    warning and returns None when Slack cannot tell."""
    try:
        answer = await call_slack("auth.test", slack.auth_test(), timeout=timeout)
    except SlackCallError as error:
        failure = error.failure
        if failure.refuses_token:
            raise ConfigError(f"SLACK_BOT_TOKEN: Slack refused the bot token ({failure.reason})") from None
        log.warning("could not check the bot token (%s); starting anyway", failure.summary)
        return None
    log.info(
        "Slack accepted the bot token: bot user %s in workspace %s",
        _text(answer.get("user_id")),
        _text(answer.get("team")),
    )
    return BotIdentity.from_auth_test(answer)


def _text(value: object) -> str:
    return value if isinstance(value, str) and value else "?"
