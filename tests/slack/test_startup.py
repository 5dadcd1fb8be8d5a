"""The start-up check of the bot token, fed Slack's answers directly (no HTTP)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.config import ConfigError
from bot.slack.authorization import BotIdentity
from bot.slack.startup import check_bot_token


def answer(data: Any, status: int = 200) -> AsyncSlackResponse:
    return AsyncSlackResponse(
        client=AsyncWebClient(),
        http_verb="POST",
        api_url="https://slack.com/api/auth.test",
        req_args={},
        data=data,
        headers={},
        status_code=status,
    )


class Answering(AsyncWebClient):
    def __init__(self, outcome: AsyncSlackResponse | BaseException, *, delay: float = 0.0) -> None:
        super().__init__(token="xoxb-unit")
        self._outcome = outcome
        self._delay = delay

    async def auth_test(self, **kwargs: Any) -> AsyncSlackResponse:
        await asyncio.sleep(self._delay)
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        return self._outcome


def refusal(data: Any, status: int = 200) -> SlackApiError:
    return SlackApiError("refused", answer(data, status))  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("name", ["invalid_auth", "not_authed", "token_revoked", "account_inactive"])
async def test_a_refused_token_is_one_config_error_line(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await check_bot_token(Answering(refusal({"ok": False, "error": name})))

    assert str(caught.value) == f"SLACK_BOT_TOKEN: Slack refused the bot token ({name})"
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    ("outcome", "said"),
    [
        (refusal({"ok": False, "error": "internal_error"}), "(internal_error)"),
        (refusal("<html>502</html>", 502), "(an unreadable answer, HTTP 502)"),
        (refusal({}, 503), "(an unreadable answer, HTTP 503)"),
        (ConnectionResetError("gone"), "(no connection)"),
        (AttributeError("'str' object has no attribute 'get'"), "(an unreadable answer)"),
    ],
)
async def test_anything_else_is_a_warning(
    caplog: pytest.LogCaptureFixture, outcome: BaseException, said: str
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.slack.startup")

    assert await check_bot_token(Answering(outcome)) is None

    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert said in record.getMessage() and "starting anyway" in record.getMessage()


async def test_a_slack_that_does_not_answer_holds_start_up_up_only_so_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.slack.startup")

    await check_bot_token(Answering(answer({"ok": True}), delay=5), timeout=0.05)

    assert "could not check the bot token (no answer in time)" in caplog.text


async def test_an_accepted_token_is_logged_with_who_it_is(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.slack.startup")

    identity = await check_bot_token(
        Answering(answer({"ok": True, "user_id": "U0BOT", "bot_id": "B0BOT", "team_id": "T0", "team": "Ops"}))
    )

    assert "Slack accepted the bot token: bot user U0BOT in workspace Ops" in caplog.text
    assert identity == BotIdentity(user_id="U0BOT", bot_id="B0BOT", team_id="T0", team="Ops")
