"""The Slack adapters against the Slack stand-in on 127.0.0.1: user groups (cached, failing closed) and
the notifier (channel first, response_url as the fallback, None when Slack takes it neither way)."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.ports import Delivered, GroupLookupError
from bot.core.rules.messages import BackupStarted, Usage
from bot.slack.app import retry_handlers
from bot.slack.groups import REFUSAL_TTL, SlackGroupDirectory
from bot.slack.notifier import SlackNotifier
from bot.standins.faults import Answer, Fault
from bot.standins.slack.standin import SlackStandIn
from tests.factories import make_request

TOKEN = "xoxb-adapter-test"
NOW = datetime(2026, 11, 26, tzinfo=UTC)
REQUEST = make_request(now=NOW, rule="sre", backup_id="b1")


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    standin = SlackStandIn(signing_secret="s" * 16, bot_token=TOKEN)
    standin.add_channel("COPS1", "ops")
    standin.add_channel("CPRIVATE1", "private", bot_member=False)
    server = TestServer(standin.app(), host="127.0.0.1")
    await server.start_server()
    standin.bind(str(server.make_url("")).rstrip("/"))
    yield standin
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client(base_url: str, session: aiohttp.ClientSession) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=base_url, session=session)


def closed_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port: int = unused.getsockname()[1]
    return port


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_memberships_are_cached_for_a_while(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    slack.set_usergroup("SSRE1", ["UALICE1"])
    clock = FakeClock()
    groups = SlackGroupDirectory(client(slack.api_url, session), clock)

    assert await groups.members(frozenset({"SSRE1"})) == {"SSRE1": {"UALICE1"}}
    assert await groups.members(frozenset({"SSRE1"})) == {"SSRE1": {"UALICE1"}}
    assert len(slack.calls("usergroups.users.list")) == 1
    clock.now += 1000
    await groups.members(frozenset({"SSRE1"}))
    assert len(slack.calls("usergroups.users.list")) == 2


async def test_an_unknown_group_is_empty_not_a_failure(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    slack.fail("usergroups.users.list", "no_such_subteam")
    groups = SlackGroupDirectory(client(slack.api_url, session))
    assert await groups.members(frozenset({"SGONE1"})) == {"SGONE1": frozenset()}


async def test_a_refusal_fails_closed_and_is_remembered_briefly(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    slack.fail_usergroups("plan_upgrade_required")
    clock = FakeClock()
    groups = SlackGroupDirectory(client(slack.api_url, session), clock)
    for _ in range(2):
        with pytest.raises(GroupLookupError, match="plan_upgrade_required") as refused:
            await groups.members(frozenset({"SSRE1"}))
        assert not refused.value.passing
    assert len(slack.calls("usergroups.users.list")) == 1
    slack.fail_usergroups(None)
    slack.set_usergroup("SSRE1", ["UALICE1"])
    clock.now += REFUSAL_TTL
    assert await groups.members(frozenset({"SSRE1"})) == {"SSRE1": {"UALICE1"}}


async def test_unreachable_slack_is_a_passing_failure(session: aiohttp.ClientSession) -> None:
    groups = SlackGroupDirectory(client(f"http://127.0.0.1:{closed_port()}/api/", session))
    with pytest.raises(GroupLookupError, match="no connection") as failed:
        await groups.members(frozenset({"SSRE1"}))
    assert failed.value.passing


async def test_a_notice_goes_to_the_channel(slack: SlackStandIn, session: aiohttp.ClientSession) -> None:
    notifier = SlackNotifier(client(slack.api_url, session), session, retry_handlers())
    delivered = await notifier.announce("COPS1", BackupStarted(REQUEST))
    assert delivered is not None
    assert delivered.ts == slack.channel_messages("COPS1")[0].ts


async def test_not_in_channel_falls_back_to_the_response_url(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    errors: list[tuple[str, str]] = []
    notifier = SlackNotifier(
        client(slack.api_url, session), session, retry_handlers(), on_error=lambda m, e: errors.append((m, e))
    )
    response_url = slack.issue_response_url(channel_id="CPRIVATE1", user_id="UALICE1")

    assert await notifier.announce(
        "CPRIVATE1", BackupStarted(REQUEST), fallback_response_url=response_url
    ) == (Delivered())
    assert errors == [("chat.postMessage", "not_in_channel")]
    assert slack.channel_messages("CPRIVATE1")[0].source != "chat.postMessage"


async def test_without_a_way_to_post_the_notice_is_not_delivered(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    notifier = SlackNotifier(client(slack.api_url, session), session, retry_handlers())
    assert await notifier.announce("CPRIVATE1", BackupStarted(REQUEST)) is None
    expired = f"{slack.base_url}/response/unknown-token"
    assert await notifier.announce("CPRIVATE1", BackupStarted(REQUEST), fallback_response_url=expired) is None


async def test_unreachable_slack_is_not_delivered(session: aiohttp.ClientSession) -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    notifier = SlackNotifier(client(f"{base}/api/", session), session, [])
    assert await notifier.announce("COPS1", BackupStarted(REQUEST)) is None
    assert not await notifier.reply(f"{base}/response/x", Usage("x"))


# --- response_url posts: one poster on the shared session, slack_sdk's retry handlers -------------------


async def test_replies_to_many_response_urls_share_the_session(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    notifier = SlackNotifier(client(slack.api_url, session), session, retry_handlers())
    for user in ("UALICE1", "UBOB1"):
        url = slack.issue_response_url(channel_id="COPS1", user_id=user)
        assert await notifier.reply(url, Usage(f"hello {user}"))
    assert [m.text for m in slack.ephemeral_for("UALICE1")] == ["hello UALICE1"]
    assert [m.text for m in slack.ephemeral_for("UBOB1")] == ["hello UBOB1"]


async def test_a_rate_limited_response_url_post_is_retried_after_retry_after(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    notifier = SlackNotifier(client(slack.api_url, session), session, retry_handlers())
    url = slack.issue_response_url(channel_id="COPS1", user_id="UALICE1")
    slack.inject(Fault(Answer.ERROR, target="response_url", status=429, retry_after=0))

    assert await notifier.reply(url, Usage("after the limit"))
    assert [post.status for post in slack.response_posts()] == [0, 200], "the 429, then the post taken"
    assert [m.text for m in slack.ephemeral_for("UALICE1")] == ["after the limit"]


@pytest.mark.parametrize(
    "fault",
    [
        Fault(Answer.HTML, target="response_url", status=503),
        Fault(Answer.NOTHING, target="response_url"),
    ],
    ids=["5xx", "connection lost"],
)
async def test_a_response_url_post_is_retried_once_after_a_5xx_or_a_lost_connection(
    slack: SlackStandIn, session: aiohttp.ClientSession, fault: Fault
) -> None:
    notifier = SlackNotifier(client(slack.api_url, session), session, retry_handlers())
    url = slack.issue_response_url(channel_id="COPS1", user_id="UALICE1")
    slack.inject(fault)
    assert await notifier.reply(url, Usage("second time lucky"))

    slack.inject(dataclasses.replace(fault, times=2))
    assert not await notifier.reply(url, Usage("twice unlucky"))
    assert [m.text for m in slack.ephemeral_for("UALICE1")] == ["second time lucky"]


async def test_a_refused_response_url_post_is_not_retried(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    notifier = SlackNotifier(client(slack.api_url, session), session, retry_handlers())
    assert not await notifier.reply(f"{slack.base_url}/response/unknown-token", Usage("x"))
    assert len(slack.response_posts()) == 1
