"""Slack stand-in faults: answers that are not JSON, no answer, slow answers, effects without answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.standins.faults import Answer, Fault
from bot.standins.slack.standin import SlackStandIn

TOKEN = "xoxb-fault-test"
OPS = "C0OPS"
ALICE = "U0ALICE"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    standin = SlackStandIn(signing_secret="secret", bot_token=TOKEN)
    standin.add_channel(OPS, "ops")
    standin.set_usergroup("S0SRE", [ALICE])
    async with TestServer(standin.app(), host="127.0.0.1") as server:
        standin.bind(str(server.make_url("/")))
        yield standin


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def post_message(
    slack: SlackStandIn, session: aiohttp.ClientSession, text: str = "hello"
) -> tuple[int, str, bytes]:
    async with session.post(
        f"{slack.api_url}chat.postMessage", json={"channel": OPS, "text": text}, headers=HEADERS
    ) as response:
        return response.status, response.content_type, await response.read()


async def test_a_gateway_html_page_instead_of_json(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    slack.inject(Fault(Answer.HTML, target="chat.postMessage"))

    status, content_type, body = await post_message(slack, session)
    after = await post_message(slack, session, "again")

    assert (status, content_type) == (502, "text/html")
    assert body.startswith(b"<html>")
    assert after[0] == 200
    assert [m.text for m in slack.channel_messages(OPS)] == ["again"]
    assert [call.fault for call in slack.calls()] == [Fault(Answer.HTML, target="chat.postMessage"), None]


async def test_an_empty_body_on_any_method(slack: SlackStandIn, session: aiohttp.ClientSession) -> None:
    slack.inject(Fault(Answer.EMPTY))

    async with session.post(f"{slack.api_url}auth.test", headers=HEADERS) as response:
        answered = (response.status, await response.read())

    assert answered == (200, b"")


async def test_a_truncated_answer_after_the_message_was_posted(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    slack.inject(Fault(Answer.TRUNCATED, target="chat.postMessage"))

    status, _, body = await post_message(slack, session)

    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    assert [m.text for m in slack.channel_messages(OPS)] == ["hello"]


async def test_posted_but_the_answer_was_lost(slack: SlackStandIn, session: aiohttp.ClientSession) -> None:
    slack.inject(Fault(Answer.NOTHING, target="chat.postMessage", applied=True))
    slack.inject(
        Fault(Answer.ERROR, target="chat.postMessage", status=504, error="internal_error", applied=True)
    )

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_message(slack, session, "one")
    status, _, body = await post_message(slack, session, "two")

    assert (status, json.loads(body)) == (504, {"ok": False, "error": "internal_error"})
    assert [m.text for m in slack.channel_messages(OPS)] == ["one", "two"]
    assert [call.ok for call in slack.calls("chat.postMessage")] == [True, True]


async def test_an_answer_held_back_longer_than_the_client_waits(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    slack.inject(Fault(Answer.NORMAL, target="usergroups.users.list", delay=0.3))

    with pytest.raises(TimeoutError):
        async with session.get(
            f"{slack.api_url}usergroups.users.list",
            params={"usergroup": "S0SRE"},
            headers=HEADERS,
            timeout=aiohttp.ClientTimeout(total=0.05),
        ):
            pass

    [call] = await slack.wait_for("usergroups.users.list")
    assert call.reply.body == {"ok": True, "users": [ALICE]}


async def test_response_url_posts_get_faults_aimed_at_them(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    url = slack.issue_response_url(channel_id=OPS, user_id=ALICE)
    slack.inject(Fault(Answer.HTML, target="response_url", status=504))
    slack.inject(Fault(Answer.NOTHING, target="response_url", applied=True))

    async with session.post(url, json={"text": "lost at the gateway"}) as response:
        gateway = (response.status, response.content_type)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await session.post(url, json={"text": "shown, answer lost"})
    [message] = slack.ephemeral_for(ALICE)

    assert gateway == (504, "text/html")
    assert message.text == "shown, answer lost"
    assert [post.status for post in slack.response_posts()] == [0, 200]


async def test_web_api_faults_do_not_hit_response_urls(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    slack.inject(Fault(Answer.HTML))

    async with session.post(
        slack.issue_response_url(channel_id=OPS, user_id=ALICE), json={"text": "hi"}
    ) as r:
        assert r.status == 200


def test_faults_name_what_the_stand_in_serves(slack: SlackStandIn) -> None:
    with pytest.raises(ValueError, match=r"reactions\.add"):
        slack.inject(Fault(target="reactions.add"))
    with pytest.raises(ValueError, match="DCS"):
        slack.inject(Fault(instance_id="i-1"))
