"""The start-up check of the bot token: ``auth.test`` must accept it before the bot serves anything.

A token Slack refuses stops start-up with one line naming ``SLACK_BOT_TOKEN``. Slack out of reach, or
answering anything else, only earns a warning: the bot starts anyway and Slack may be back by the time
someone types a command.
"""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import ConfigError
from bot.slack.errors import SlackCallError, call_slack

log = logging.getLogger(__name__)

# Start-up waits no longer than this for Slack's answer.
CHECK_TIMEOUT = 10.0


async def check_bot_token(slack: AsyncWebClient, *, timeout: float = CHECK_TIMEOUT) -> None:
    """Raises :class:`ConfigError` when Slack refuses the bot token; logs a warning when it cannot tell."""
    try:
        answer = await call_slack("auth.test", slack.auth_test(), timeout=timeout)
    except SlackCallError as error:
        failure = error.failure
        if failure.refuses_token:
            raise ConfigError(f"SLACK_BOT_TOKEN: Slack refused the bot token ({failure.reason})") from None
        log.warning("could not check the bot token (%s); starting anyway", failure.summary)
        return
    log.info(
        "Slack accepted the bot token: bot user %s in workspace %s",
        _text(answer.get("user_id")),
        _text(answer.get("team")),
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) and value else "?"
