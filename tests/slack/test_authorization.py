"""Bolt's authorization from the start-up answer, fed Slack's answers directly (no HTTP): a known bot asks
nothing; an unknown one asks ``auth.test`` once and keeps the answer; while Slack cannot tell, requests go
through on the token alone."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack.authorization import BotAuthorization, BotIdentity

TOKEN = "xoxb-unit-authorization"
ME = BotIdentity(user_id="U0BOT", bot_id="B0BOT", team_id="T0", team="Ops", scopes="commands,chat:write")
WHO = {"ok": True, "user_id": "U0BOT", "bot_id": "B0BOT", "team_id": "T0", "team": "Ops"}
COMMAND = {"command": "/dcs-backup", "text": "list", "user_id": "UALICE1", "team_id": "T0"}


def answer(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> AsyncSlackResponse:
    return AsyncSlackResponse(
        client=AsyncWebClient(),
        http_verb="POST",
        api_url="https://slack.com/api/auth.test",
        req_args={},
        data=data,
        headers=headers or {},
        status_code=status,
    )


class Slack(AsyncWebClient):
    """Answers auth.test with the next outcome (the last one repeats), counting the questions."""

    def __init__(self, *outcomes: AsyncSlackResponse | BaseException, delay: float = 0.0) -> None:
        super().__init__(token=TOKEN)
        self.outcomes = list(outcomes)
        self.asked = 0
        self.delay = delay

    async def auth_test(self, **kwargs: Any) -> AsyncSlackResponse:
        self.asked += 1
        await asyncio.sleep(self.delay)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def refusal(data: Any, status: int = 200) -> SlackApiError:
    return SlackApiError("refused", answer(data, status))  # type: ignore[no-untyped-call]


async def authorize(authorization: BotAuthorization, user_id: str = "UALICE1") -> Any:
    return await authorization.authorize(enterprise_id=None, team_id="T-request", user_id=user_id)


def test_the_identity_is_read_from_auth_test() -> None:
    headers = {"x-oauth-scopes": "commands,chat:write"}

    assert BotIdentity.from_auth_test(answer(WHO, headers=headers)) == ME
    assert BotIdentity.from_auth_test(answer({"ok": True, "user_id": ""})) == BotIdentity(None, None, None)


async def test_a_known_bot_asks_slack_nothing() -> None:
    slack = Slack(answer(WHO))
    authorization = BotAuthorization(slack)
    authorization.learn(ME)

    result = await authorize(authorization)

    assert slack.asked == 0
    assert (result.bot_token, result.bot_user_id, result.bot_id) == (TOKEN, "U0BOT", "B0BOT")
    assert (result.team_id, result.user_id, result.bot_scopes) == (
        "T0",
        "UALICE1",
        ["commands", "chat:write"],
    )


@pytest.mark.parametrize(
    "trouble",
    [
        pytest.param(refusal("<html>502</html>", 502), id="html-502"),
        pytest.param(refusal({}, 200), id="empty"),
        pytest.param(AttributeError("'str' object has no attribute 'get'"), id="unreadable"),
        pytest.param(ConnectionResetError("gone"), id="connection-reset"),
        pytest.param(refusal({"ok": False, "error": "internal_error"}), id="internal-error"),
    ],
)
async def test_while_slack_cannot_tell_the_request_goes_through_on_the_token(
    caplog: pytest.LogCaptureFixture, trouble: BaseException
) -> None:
    caplog.set_level(logging.INFO, logger="bot.slack.authorization")
    slack = Slack(trouble, trouble, answer(WHO))
    authorization = BotAuthorization(slack)
    authorization.learn(None)

    first = await authorize(authorization)
    second = await authorize(authorization)

    assert (first.bot_token, first.bot_user_id, first.team_id) == (TOKEN, None, "T-request")
    assert second.bot_user_id is None and slack.asked == 2, "each request asks once while Slack cannot tell"
    assert "could not ask Slack who the bot is" in caplog.text and "Traceback" not in caplog.text

    third = await authorize(authorization)
    fourth = await authorize(authorization)

    assert third.bot_user_id == fourth.bot_user_id == "U0BOT" and slack.asked == 3, "asked once, then kept"
    assert authorization.identity == BotIdentity("U0BOT", "B0BOT", "T0", team="Ops")


async def test_a_slow_slack_holds_a_request_up_only_so_long() -> None:
    slack = Slack(answer(WHO), delay=5)
    authorization = BotAuthorization(slack, timeout=0.05)

    result = await asyncio.wait_for(authorize(authorization), timeout=1)

    assert result.bot_token == TOKEN and result.bot_user_id is None


async def test_requests_arriving_together_share_one_question() -> None:
    slack = Slack(answer(WHO), delay=0.05)
    authorization = BotAuthorization(slack)

    results = await asyncio.gather(*(authorize(authorization) for _ in range(5)))

    assert slack.asked == 1 and {r.bot_user_id for r in results} == {"U0BOT"}


async def test_a_token_slack_refuses_later_is_asked_about_no_more(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="bot.slack.authorization")
    slack = Slack(refusal({"ok": False, "error": "token_revoked"}))
    authorization = BotAuthorization(slack)

    results = [await authorize(authorization) for _ in range(3)]

    assert slack.asked == 1 and all(r.bot_token == TOKEN for r in results)
    assert "Slack refused the bot token (token_revoked)" in caplog.text


def bolt(authorization: BotAuthorization, heard: list[AsyncBoltContext]) -> AsyncApp:
    app = AsyncApp(
        client=AsyncWebClient(token=TOKEN),
        signing_secret="unused",
        request_verification_enabled=False,
        authorize=authorization.bolt_authorize(),
    )

    async def on_command(ack: AsyncAck, context: AsyncBoltContext) -> None:
        heard.append(context)
        await ack()

    async def on_event(context: AsyncBoltContext) -> None:
        heard.append(context)

    app.command("/dcs-backup")(on_command)
    app.event("app_mention")(on_event)
    return app


@pytest.mark.parametrize("identity", [ME, None], ids=["known", "unknown"])
async def test_in_a_bolt_app_a_command_reaches_its_listener_with_the_token(
    identity: BotIdentity | None,
) -> None:
    slack = Slack(refusal("<html>502</html>", 502))
    authorization = BotAuthorization(slack)
    authorization.learn(identity)
    heard: list[AsyncBoltContext] = []

    response = await bolt(authorization, heard).async_dispatch(
        AsyncBoltRequest(body=COMMAND, mode="socket_mode")
    )

    assert response.status == 200 and "reinstall" not in response.body
    [context] = heard
    assert context.client.token == TOKEN and context.bot_token == TOKEN and context.user_id == "UALICE1"
    assert context.bot_user_id == (identity.user_id if identity else None)


async def test_in_a_bolt_app_the_bots_own_events_are_still_ignored() -> None:
    authorization = BotAuthorization(Slack(answer(WHO)))
    authorization.learn(ME)
    heard: list[AsyncBoltContext] = []
    own = {"type": "event_callback", "team_id": "T0", "event": {"type": "app_mention", "user": "U0BOT"}}

    response = await bolt(authorization, heard).async_dispatch(AsyncBoltRequest(body=own, mode="socket_mode"))

    assert response.status == 200 and heard == []
