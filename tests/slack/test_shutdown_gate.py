"""The shutdown gate on its own: while the bot stops, commands and clicks get the RESTARTING answer and
reach no listener; otherwise, and for anything else, the chain goes on."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.slack.middleware.shutdown_gate import RESTARTING, ShutdownGate

COMMAND = {"command": "/dcs-backup", "text": "redis-prod", "response_url": "http://127.0.0.1:9/r"}
CLICK = {
    "type": "block_actions",
    "actions": [{"action_id": "backup_confirm", "value": "req-1"}],
    "user": {"id": "UALICE1"},
    "response_url": "http://127.0.0.1:9/r",
}
EVENT = {"type": "event_callback", "event": {"type": "app_mention"}}


class FakeAck:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, text: str = "", **_: Any) -> BoltResponse:
        self.texts.append(text)
        return BoltResponse(status=200, body=text)


class FakeRespond:
    def __init__(self, fails: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fails = fails

    async def __call__(self, **message: Any) -> None:
        self.calls.append(message)
        if self.fails:
            raise aiohttp.ClientConnectionError("response_url unreachable")


class FakeNext:
    def __init__(self) -> None:
        self.called = False
        self.response = BoltResponse(status=200, body="from the listener")

    async def __call__(self) -> BoltResponse:
        self.called = True
        return self.response


async def gate(
    body: dict[str, Any], *, accepting: bool, respond_fails: bool = False
) -> tuple[BoltResponse | None, FakeAck, FakeRespond, FakeNext]:
    ack, respond, next_ = FakeAck(), FakeRespond(respond_fails), FakeNext()
    request = AsyncBoltRequest(body=body, mode="socket_mode", context={"ack": ack, "respond": respond})
    middleware = ShutdownGate(lambda: accepting)
    response = await middleware.async_process(req=request, resp=BoltResponse(status=200), next=next_)
    return response, ack, respond, next_


async def test_while_accepting_every_request_goes_on() -> None:
    for body in (COMMAND, CLICK, EVENT):
        response, ack, respond, next_ = await gate(body, accepting=True)
        assert next_.called and response is next_.response
        assert (ack.texts, respond.calls) == ([], [])


async def test_a_command_while_stopping_is_acked_with_the_restarting_text() -> None:
    response, ack, respond, next_ = await gate(COMMAND, accepting=False)

    assert not next_.called
    assert ack.texts == [RESTARTING]
    assert response is not None and response.body == RESTARTING
    assert respond.calls == []


async def test_a_click_while_stopping_is_acked_and_answered_beside_the_card() -> None:
    response, ack, respond, next_ = await gate(CLICK, accepting=False)

    assert not next_.called
    assert ack.texts == [""]
    assert response is not None and response.status == 200 and response.body == ""
    assert respond.calls == [{"text": RESTARTING, "replace_original": False}]


async def test_a_click_is_still_acked_when_its_answer_cannot_be_posted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    response, ack, respond, next_ = await gate(CLICK, accepting=False, respond_fails=True)

    assert not next_.called and ack.texts == [""] and len(respond.calls) == 1
    assert response is not None and response.status == 200
    assert "could not tell the clicker the bot is restarting" in caplog.text


async def test_anything_else_while_stopping_goes_on() -> None:
    response, ack, _, next_ = await gate(EVENT, accepting=False)

    assert next_.called and response is next_.response
    assert ack.texts == []


async def test_in_a_bolt_app_no_listener_runs_while_stopping() -> None:
    async def authorize(**_: Any) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=None, team_id="T1", bot_token="xoxb-gate", bot_user_id="UBOT")

    app = AsyncApp(signing_secret="unused", request_verification_enabled=False, authorize=authorize)
    app.use(ShutdownGate(lambda: False))
    heard: list[str] = []

    async def on_command(ack: AsyncAck) -> None:
        heard.append("command")
        await ack()

    app.command("/dcs-backup")(on_command)

    response = await app.async_dispatch(AsyncBoltRequest(body=COMMAND, mode="socket_mode"))

    assert (response.status, response.body) == (200, RESTARTING)
    assert heard == []
