"""The start-up check of the bot token: ``auth.test`` must accept it before the bot serves anything.

A token Slack refuses stops start-up with one line naming ``SLACK_BOT_TOKEN``. Slack out of reach, or
answering anything else, only earns a warning: the bot starts anyway and Slack may be back by the time
someone types a command.
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import ConfigError

log = logging.getLogger(__name__)

#: Slack's answers that say the token itself is no good.
REFUSED_TOKEN = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "not_allowed_token_type",
        "token_revoked",
        "token_expired",
        "account_inactive",
    }
)
# Start-up waits no longer than this for Slack's answer.
CHECK_TIMEOUT = 10.0


async def check_bot_token(slack: AsyncWebClient, *, timeout: float = CHECK_TIMEOUT) -> None:
    """Raises :class:`ConfigError` when Slack refuses the bot token; logs a warning when it cannot tell."""
    try:
        async with asyncio.timeout(timeout):
            answer = await slack.auth_test()
    except SlackApiError as error:
        reason = slack_error_name(error)
        if reason in REFUSED_TOKEN:
            raise ConfigError(f"SLACK_BOT_TOKEN: Slack refused the bot token ({reason})") from None
        log.warning("could not check the bot token (Slack answered %s); starting anyway", reason)
        return
    except TimeoutError:
        log.warning("could not check the bot token (no answer from Slack in %g s); starting anyway", timeout)
        return
    except Exception as error:  # out of reach, or an answer slack_sdk cannot read: it may pass
        log.warning("could not check the bot token (%s from Slack); starting anyway", type(error).__name__)
        return
    log.info(
        "Slack accepted the bot token: bot user %s in workspace %s",
        _text(answer.get("user_id")),
        _text(answer.get("team")),
    )


def slack_error_name(error: SlackApiError) -> str:
    """Slack's ``error`` field, or what the answer was when it had none (an HTML page, an empty body)."""
    response = error.response
    data = getattr(response, "data", None)
    if isinstance(data, dict):
        name = data.get("error")
        if isinstance(name, str) and name:
            return name
    status = getattr(response, "status_code", None)
    return f"HTTP {status} without an error name" if isinstance(status, int) else "an unreadable answer"


def _text(value: object) -> str:
    return value if isinstance(value, str) and value else "?"
