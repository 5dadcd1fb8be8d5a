"""The Slack stand-in's Home tabs and chat.update: views.publish keeps every view per person and refuses
what Slack refuses (``invalid_arguments``); chat.update replaces only the bot's own channel messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.standins.slack.standin import SlackStandIn

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"
ALICE, OPS = "U0ALICE", "C0OPS"
HOME = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi <@U0ALICE>"}}]}


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    standin = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN)
    standin.add_channel(OPS, "ops")
    standin.set_user(ALICE, "alice")
    async with TestServer(standin.app(), host="127.0.0.1") as server:
        standin.bind(str(server.make_url("/")))
        yield standin


@pytest.fixture
def client(slack: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.api_url)


async def test_a_published_home_view_is_kept_and_rendered(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    assert slack.render_home(ALICE) == "(empty Home tab)\n"

    answer = await client.views_publish(user_id=ALICE, view=HOME)
    await client.views_publish(user_id=ALICE, view=HOME | {"private_metadata": "2"})

    assert answer["view"]["type"] == "home" and answer["view"]["id"].startswith("V")
    assert [v.get("private_metadata") for v in slack.home_views(ALICE)] == [None, "2"]
    assert slack.render_home(ALICE) == "[ Home ]\nHi @alice\n"
    event = slack.user.home_opened_event(user_id=ALICE)
    assert event["type"] == "event_callback" and event["event"]["view"]["id"] == answer["view"]["id"]


async def test_a_view_slack_would_refuse_is_invalid_arguments(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    too_many = {"type": "home", "blocks": [{"type": "divider"}] * 101}
    with pytest.raises(SlackApiError) as raised:
        await client.views_publish(user_id=ALICE, view=too_many)

    assert raised.value.response["error"] == "invalid_arguments"
    assert any("100" in line for line in raised.value.response["response_metadata"]["messages"])
    assert slack.home_views(ALICE) == []


async def test_chat_update_replaces_only_the_bots_own_messages(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel=OPS, text="before")
    await client.chat_update(channel=OPS, ts=posted["ts"], text="after")

    [message] = slack.channel_messages(OPS)
    assert message.text == "after" and [c.text for c in message.history] == ["before"]
    with pytest.raises(SlackApiError) as raised:
        await client.chat_update(channel=OPS, ts="1.000001", text="x")
    assert raised.value.response["error"] == "message_not_found"
