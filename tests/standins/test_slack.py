"""The Slack stand-in, driven by slack_sdk's real clients and by a throwaway aiohttp app playing the bot."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond, AsyncSay
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.standins.slack.delivery import BotReply, Inbound, PayloadKind, post_raw
from bot.standins.slack.render import Directory, render_block, render_content
from bot.standins.slack.standin import SLACK_STANDIN, SlackStandIn
from bot.standins.slack.timeline import Content, Message

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"
OPS = "C0OPS"
ALICE = "U0ALICE"
BOB = "U0BOB"
START = 1_732_650_000.0

CARD_BLOCKS: list[dict[str, Any]] = [
    {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "Back up *redis-prod* (AOF)?\nRemark: before the migration"},
    },
    {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": "Request r-1"},
            {"type": "plain_text", "text": "expires in 5 min"},
        ],
    },
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "backup_confirm",
                "value": "r-1",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Confirm"},
            },
            {
                "type": "button",
                "action_id": "backup_cancel",
                "value": "r-1",
                "text": {"type": "plain_text", "text": "Cancel"},
            },
        ],
    },
]


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes
    form: dict[str, str]
    payload: dict[str, Any] | None


@dataclass
class ToyBot:
    """Plays the bot: checks Slack's signature like Bolt does, records, answers with queued responses."""

    received: list[Received] = field(default_factory=list)
    replies: deque[web.Response] = field(default_factory=deque)
    hold: asyncio.Event | None = None
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not SignatureVerifier(SECRET).is_valid_request(raw, dict(request.headers)):
            return web.json_response({"error": "invalid request"}, status=401)
        form = {key: values[0] for key, values in parse_qs(raw.decode(), keep_blank_values=True).items()}
        payload = json.loads(form["payload"]) if "payload" in form else None
        self.received.append(Received(dict(request.headers), raw, form, payload))
        if self.hold is not None:
            await self.hold.wait()
        return self.replies.popleft() if self.replies else web.Response(status=200)

    def ack_with(self, body: dict[str, Any]) -> None:
        self.replies.append(web.json_response(body))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def slack(clock: FakeClock) -> AsyncIterator[SlackStandIn]:
    standin = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN, clock=clock)
    standin.add_channel(OPS, "ops")
    standin.set_user(ALICE, "alice")
    standin.set_user(BOB, "bob")
    async with TestServer(standin.app(), host="127.0.0.1") as server:
        standin.bind(str(server.make_url("/")))
        yield standin


@pytest.fixture
async def toy_bot() -> AsyncIterator[ToyBot]:
    bot = ToyBot()
    app = web.Application()
    app.router.add_post("/slack/events", bot.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        bot.url = str(server.make_url("/slack/events"))
        yield bot
        if bot.hold is not None:
            bot.hold.set()


@pytest.fixture
def client(slack: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.api_url)


async def show_card(slack: SlackStandIn, toy_bot: ToyBot, user: str = ALICE) -> Message:
    """alice runs the command and the bot acks with the confirmation card."""
    toy_bot.ack_with({"text": "Confirm the backup", "blocks": CARD_BLOCKS})
    result = await slack.send_command(
        toy_bot.url, user_id=user, channel_id=OPS, text='redis-prod aof "before the migration"'
    )
    assert result.message is not None
    return result.message


# ---- Web API ------------------------------------------------------------------------------------------


async def test_auth_test_describes_the_bot(client: AsyncWebClient) -> None:
    response = await client.auth_test()

    assert response["ok"] is True
    assert response["team_id"] == "T0DEMO"
    assert response["user_id"] == "U0DCSBOT"
    assert response["bot_id"] == "B0DCSBOT"
    assert response["url"] == "https://demo.slack.com/"


async def test_wrong_token_is_invalid_auth_and_missing_token_not_authed(slack: SlackStandIn) -> None:
    with pytest.raises(SlackApiError) as raised:
        await AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url).auth_test()
    assert raised.value.response["error"] == "invalid_auth"

    async with aiohttp.ClientSession() as session, session.post(f"{slack.api_url}auth.test") as response:
        assert await response.json() == {"ok": False, "error": "not_authed"}


async def test_post_message_returns_increasing_slack_timestamps(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    first = await client.chat_postMessage(channel=OPS, text="one")
    second = await client.chat_postMessage(channel=OPS, text="two")

    assert first["channel"] == OPS
    assert first["message"]["text"] == "one"
    assert first["message"]["bot_id"] == "B0DCSBOT"
    assert re.fullmatch(r"\d{10}\.\d{6}", first["ts"])
    assert float(second["ts"]) > float(first["ts"])
    assert [m.text for m in slack.channel_messages(OPS)] == ["one", "two"]


async def test_thread_replies_stay_out_of_the_channel_view(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(channel=OPS, text="backup started")
    await client.chat_postMessage(channel=OPS, text="backup done", thread_ts=parent["ts"])

    assert [m.text for m in slack.channel_messages(OPS)] == ["backup started"]
    assert [m.text for m in slack.thread(OPS, parent["ts"])] == ["backup done"]


async def test_channel_rules_for_posting(clock: FakeClock) -> None:
    strict = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN, clock=clock, accept_unknown_channels=False)
    strict.add_channel("C0PRIV", "secret-ops", bot_member=False)
    strict.add_channel(OPS, "ops")
    async with TestServer(strict.app(), host="127.0.0.1") as server:
        strict.bind(str(server.make_url("/")))
        client = AsyncWebClient(token=TOKEN, base_url=strict.api_url)

        for channel, expected in (("C0PRIV", "not_in_channel"), ("C0NOPE", "channel_not_found")):
            with pytest.raises(SlackApiError) as raised:
                await client.chat_postMessage(channel=channel, text="result")
            assert raised.value.response["error"] == expected
        by_name = await client.chat_postMessage(channel="#ops", text="by name")

    assert by_name["channel"] == OPS
    assert strict.channel_messages("C0PRIV") == []


async def test_unknown_channels_are_accepted_by_default(client: AsyncWebClient, slack: SlackStandIn) -> None:
    response = await client.chat_postMessage(channel="C0ELSEWHERE", text="hi")

    assert response["ok"] is True
    assert [m.text for m in slack.channel_messages("C0ELSEWHERE")] == ["hi"]


async def test_usergroup_membership_and_errors(slack: SlackStandIn, client: AsyncWebClient) -> None:
    slack.set_usergroup("S0SRE", [ALICE, BOB])

    members = await client.usergroups_users_list(usergroup="S0SRE")
    with pytest.raises(SlackApiError) as unknown:
        await client.usergroups_users_list(usergroup="S0NOPE")
    slack.fail_usergroups("plan_upgrade_required")
    with pytest.raises(SlackApiError) as on_free_plan:
        await client.usergroups_users_list(usergroup="S0SRE")

    assert members["users"] == [ALICE, BOB]
    assert unknown.value.response["error"] == "no_such_subteam"
    assert on_free_plan.value.response["error"] == "plan_upgrade_required"


async def test_params_arrive_as_json_form_or_query(slack: SlackStandIn, client: AsyncWebClient) -> None:
    slack.set_usergroup("S0SRE", [ALICE])
    await client.chat_postMessage(channel=OPS, text="json")
    await client.api_call("chat.postMessage", data={"channel": OPS, "text": "form"})
    await client.usergroups_users_list(usergroup="S0SRE")

    json_call, form_call = slack.calls("chat.postMessage")
    [query_call] = slack.calls("usergroups.users.list")
    assert json_call.params == {"channel": OPS, "text": "json"}
    assert form_call.params == {"channel": OPS, "text": "form"}
    assert (query_call.http_method, query_call.params) == ("GET", {"usergroup": "S0SRE"})
    assert json_call.headers["authorization"] == f"Bearer {TOKEN}"
    assert [m.text for m in slack.channel_messages(OPS)] == ["json", "form"]


async def test_malformed_calls_get_slacks_errors(slack: SlackStandIn, client: AsyncWebClient) -> None:
    form_blocks = await client.api_call(
        "chat.postMessage", data={"channel": OPS, "blocks": json.dumps(CARD_BLOCKS[:1])}
    )
    outcomes = []
    for method, data in (
        ("chat.postMessage", {"channel": OPS, "blocks": "[not json"}),
        ("chat.postMessage", {"channel": OPS, "blocks": '{"type": "divider"}'}),
        ("chat.postMessage", {"channel": OPS}),
    ):
        with pytest.raises(SlackApiError) as raised:
            await client.api_call(method, data=data)
        outcomes.append(raised.value.response["error"])
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{slack.api_url}chat.postMessage", data="{oops", headers=headers) as response,
    ):
        bad_json = await response.json()

    assert form_blocks["message"]["blocks"] == CARD_BLOCKS[:1]
    assert outcomes == [
        "invalid_blocks",
        "invalid_blocks",
        "no_text",
    ]
    assert bad_json == {"ok": False, "error": "invalid_json"}


async def test_methods_the_bot_does_not_call_are_unknown(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.reactions_add(channel=OPS, timestamp="1.000000", name="tada")

    assert raised.value.response.data == {"ok": False, "error": "unknown_method"}


# ---- scripted failures --------------------------------------------------------------------------------


async def test_scripted_rate_limit_is_a_429_with_retry_after(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    slack.fail("usergroups.users.list", "ratelimited", retry_after=7)

    with pytest.raises(SlackApiError) as raised:
        await client.usergroups_users_list(usergroup="S0SRE")

    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7"
    assert raised.value.response["error"] == "ratelimited"


async def test_rate_limit_retry_handler_retries_the_scripted_429(
    slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The handler sleeps Retry-After plus random.random() of jitter; pin the jitter so the test stays instant.
    monkeypatch.setattr(random, "random", lambda: 0.0)
    slack.set_usergroup("S0SRE", [ALICE])
    slack.fail("usergroups.users.list", retry_after=0)
    client = AsyncWebClient(token=TOKEN, base_url=slack.api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))

    response = await client.usergroups_users_list(usergroup="S0SRE")

    assert response["users"] == [ALICE]
    assert [c.reply.status for c in slack.calls("usergroups.users.list")] == [429, 200]


async def test_scripted_errors_are_used_up_in_order(slack: SlackStandIn, client: AsyncWebClient) -> None:
    slack.fail("chat.postMessage", "channel_not_found", times=2)
    slack.fail("chat.postMessage", "msg_too_long")

    errors = []
    for _ in range(3):
        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel=OPS, text="x")
        assert raised.value.response.status_code == 200
        errors.append(raised.value.response["error"])
    await client.chat_postMessage(channel=OPS, text="finally")

    assert errors == ["channel_not_found", "channel_not_found", "msg_too_long"]
    assert [m.text for m in slack.channel_messages(OPS)] == ["finally"]


# ---- recording and waiting ----------------------------------------------------------------------------


async def test_wait_for_wakes_up_when_the_call_arrives(slack: SlackStandIn, client: AsyncWebClient) -> None:
    waiter = asyncio.create_task(slack.wait_for("chat.postMessage", count=2))
    await client.chat_postMessage(channel=OPS, text="one")
    assert not waiter.done()
    await client.chat_postMessage(channel=OPS, text="two")

    calls = await waiter

    assert [c.params["text"] for c in calls] == ["one", "two"]


async def test_wait_for_reports_what_it_saw_on_timeout(slack: SlackStandIn, client: AsyncWebClient) -> None:
    await client.auth_test()

    with pytest.raises(TimeoutError, match=r"chat\.postMessage.*auth\.test"):
        await slack.wait_for("chat.postMessage", timeout=0.01)


async def test_clear_calls_starts_a_new_phase(slack: SlackStandIn, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel=OPS, text="phase one")
    slack.clear_calls()
    await client.chat_postMessage(channel=OPS, text="phase two")

    [call] = await slack.wait_for("chat.postMessage")
    assert call.params["text"] == "phase two"
    assert len(slack.channel_messages(OPS)) == 2


async def test_wait_for_message_sees_replacements(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    card, response_url = await click_and_get_response_url(slack, toy_bot, "backup_confirm")
    waiter = asyncio.create_task(slack.wait_for_message(lambda m: m.text == "succeeded"))
    await AsyncWebhookClient(response_url).send(text="succeeded", replace_original=True)

    message = await waiter

    assert message.ts == card.ts


# ---- the client side: slash commands ------------------------------------------------------------------


async def test_command_is_a_signed_form_like_slacks(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    result = await slack.send_command(
        toy_bot.url, user_id=ALICE, channel_id=OPS, text='redis-prod aof "R&D <team>"'
    )

    assert result.status == 200
    [request] = toy_bot.received
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form == {
        "token": "emulated-verification-token",
        "team_id": "T0DEMO",
        "team_domain": "demo",
        "channel_id": OPS,
        "channel_name": "ops",
        "user_id": ALICE,
        "user_name": "alice",
        "command": "/dcs-backup",
        "text": 'redis-prod aof "R&amp;D &lt;team&gt;"',
        "api_app_id": "A0DCSBACKUP",
        "is_enterprise_install": "false",
        "response_url": result.response_url,
        "trigger_id": request.form["trigger_id"],
    }
    assert result.response_url.startswith(f"{slack.base_url}/response/")
    assert result.message is None


async def test_command_ack_body_is_shown_to_the_requester_only(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    card = await show_card(slack, toy_bot)

    assert card.visible_to == ALICE
    assert card.source == "ack"
    assert slack.ephemeral_for(ALICE) == [card]
    assert slack.channel_messages(OPS) == []
    assert [(b.action_id, b.value, b.label) for b in slack.buttons(card)] == [
        ("backup_confirm", "r-1", "Confirm"),
        ("backup_cancel", "r-1", "Cancel"),
    ]


async def test_in_channel_ack_is_seen_by_everyone(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    toy_bot.ack_with({"response_type": "in_channel", "text": "Backups of redis-prod: none"})

    result = await slack.send_command(toy_bot.url, user_id=ALICE, channel_id=OPS, text="list redis-prod")

    assert result.message is not None
    assert slack.channel_messages(OPS) == [result.message]


async def test_plain_text_and_empty_acks(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    toy_bot.replies.append(web.Response(text="Usage: /dcs-backup <instance>"))
    toy_bot.ack_with({"response_action": "clear"})

    plain = await slack.send_command(toy_bot.url, user_id=ALICE, channel_id=OPS, text="help")
    silent = await slack.send_command(toy_bot.url, user_id=ALICE, channel_id=OPS, text="help")

    assert plain.message is not None
    assert plain.message.text == "Usage: /dcs-backup <instance>"
    assert plain.json() is None
    assert silent.message is None
    assert silent.json() == {"response_action": "clear"}


async def test_names_given_with_a_command_are_remembered(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    toy_bot.ack_with({"text": "ok"})

    await slack.send_command(
        toy_bot.url,
        user_id="U0CAROL",
        user_name="carol",
        channel_id="C0DEV",
        channel_name="dev",
        text="help",
        command="/other",
    )

    assert toy_bot.received[0].form["channel_name"] == "dev"
    assert slack.render_transcript() == (
        "--- #dev ---\n@carol: /other help\nDCS Backup (only visible to @carol): ok\n"
    )


async def test_a_failing_bot_gets_slackbots_error_message(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    toy_bot.replies.append(web.Response(status=500, text="boom"))

    result = await slack.send_command(toy_bot.url, user_id=ALICE, channel_id=OPS, text="help")

    assert result.status == 500
    assert result.message is not None
    assert result.message.author == "USLACKBOT"
    assert result.message.text == '/dcs-backup failed with the error "http_service_error"'


async def test_a_slow_ack_is_an_operation_timeout(clock: FakeClock, toy_bot: ToyBot) -> None:
    slow = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN, clock=clock, ack_timeout=0.05)
    slow.bind("http://127.0.0.1:9")  # only response_urls are built from it; nothing is sent there
    toy_bot.hold = asyncio.Event()

    result = await slow.send_command(toy_bot.url, user_id=ALICE, channel_id=OPS, text="help")

    assert (result.status, result.reply.error) == (0, "operation_timeout")
    assert result.message is not None
    assert "operation_timeout" in result.message.text


async def test_a_missing_bot_is_dispatch_failed(slack: SlackStandIn) -> None:
    closed = TestServer(web.Application(), host="127.0.0.1")
    await closed.start_server()
    url = str(closed.make_url("/slack/events"))
    await closed.close()

    result = await slack.send_command(url, user_id=ALICE, channel_id=OPS, text="help")

    assert (result.status, result.reply.error) == (0, "dispatch_failed")


async def test_payloads_can_travel_by_another_delivery(slack: SlackStandIn) -> None:
    @dataclass
    class Capture:
        seen: list[Inbound] = field(default_factory=list)

        async def deliver(self, inbound: Inbound) -> BotReply:
            self.seen.append(inbound)
            return BotReply(status=200, body='{"text": "via socket"}')

    capture = Capture()

    result = await slack.send_command(capture, user_id=ALICE, channel_id=OPS, text="help")

    [inbound] = capture.seen
    assert inbound.kind is PayloadKind.SLASH_COMMANDS
    assert inbound.payload["text"] == "help"
    assert result.message is not None
    assert result.message.text == "via socket"


# ---- the client side: clicks --------------------------------------------------------------------------


async def test_click_on_ephemeral_card_sends_block_actions(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    card = await show_card(slack, toy_bot)

    status = await slack.click(toy_bot.url, user_id=ALICE, message=card, action_id="backup_confirm")

    assert status == 200
    payload = toy_bot.received[-1].payload
    assert payload is not None
    assert payload["type"] == "block_actions"
    assert payload["user"] == {"id": ALICE, "username": "alice", "name": "alice", "team_id": "T0DEMO"}
    assert payload["container"] == {
        "type": "message",
        "message_ts": card.ts,
        "channel_id": OPS,
        "is_ephemeral": True,
    }
    assert payload["channel"] == {"id": OPS, "name": "ops"}
    assert "message" not in payload
    [action] = payload["actions"]
    assert {k: action[k] for k in ("action_id", "block_id", "value", "type")} == {
        "action_id": "backup_confirm",
        "block_id": "decide",
        "value": "r-1",
        "type": "button",
    }
    assert action["text"]["text"] == "Confirm"
    assert payload["response_url"].startswith(f"{slack.base_url}/response/")


async def test_click_on_channel_message_carries_the_message(
    slack: SlackStandIn, client: AsyncWebClient, toy_bot: ToyBot
) -> None:
    posted = await client.chat_postMessage(channel=OPS, text="Approve?", blocks=CARD_BLOCKS)
    [message] = slack.channel_messages(OPS)

    await slack.click(toy_bot.url, user_id=BOB, message=message, action_id="backup_cancel", value="forged")

    payload = toy_bot.received[-1].payload
    assert payload is not None
    assert payload["container"]["is_ephemeral"] is False
    assert payload["message"]["ts"] == posted["ts"]
    assert payload["message"]["blocks"] == CARD_BLOCKS
    assert payload["actions"][0]["value"] == "forged"


async def test_clicks_a_real_client_could_not_make_are_refused(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    card = await show_card(slack, toy_bot)

    with pytest.raises(PermissionError):
        await slack.click(toy_bot.url, user_id=BOB, message=card, action_id="backup_confirm")
    with pytest.raises(LookupError, match="backup_confirm, backup_cancel"):
        await slack.click(toy_bot.url, user_id=ALICE, message=card, action_id="backup_approve")
    assert len(toy_bot.received) == 1

    forced = await slack.click(toy_bot.url, user_id=BOB, message=card, action_id="backup_confirm", force=True)

    assert forced == 200
    payload = toy_bot.received[-1].payload
    assert payload is not None
    assert payload["user"]["id"] == BOB


async def test_crafted_payloads_are_signed_and_delivered(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    card = await show_card(slack, toy_bot)
    payload, _ = slack.build_click(user_id=ALICE, message=card, action_id="backup_confirm")
    payload["user"]["id"] = BOB

    reply = await slack.send_interactive(toy_bot.url, payload)

    assert reply.status == 200
    received = toy_bot.received[-1].payload
    assert received is not None
    assert received["user"]["id"] == BOB


# ---- signatures ---------------------------------------------------------------------------------------


def test_signed_headers_verify_and_forgeries_do_not(slack: SlackStandIn) -> None:
    body = "payload=%7B%7D"
    verifier = SignatureVerifier(SECRET)

    assert verifier.is_valid_request(body, slack.signed_headers(body))
    assert not verifier.is_valid_request(body, slack.signed_headers(body, secret="someone-else"))
    stale = int(verifier.clock.now()) - 301
    assert not verifier.is_valid_request(body, slack.signed_headers(body, timestamp=stale))
    assert not verifier.is_valid_request(body + "x", slack.signed_headers(body))


async def test_bot_rejects_forged_requests(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    body = "command=%2Fdcs-backup&text=help"

    forged = await post_raw(toy_bot.url, body, slack.signed_headers(body, secret="someone-else"))
    genuine = await post_raw(toy_bot.url, body, slack.signed_headers(body))

    assert (forged.status, genuine.status) == (401, 200)


# ---- response_url semantics ---------------------------------------------------------------------------


async def click_and_get_response_url(
    slack: SlackStandIn, toy_bot: ToyBot, action_id: str
) -> tuple[Message, str]:
    card = await show_card(slack, toy_bot)
    await slack.click(toy_bot.url, user_id=ALICE, message=card, action_id=action_id)
    payload = toy_bot.received[-1].payload
    assert payload is not None
    return card, str(payload["response_url"])


async def test_click_response_url_replaces_the_card(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    card, response_url = await click_and_get_response_url(slack, toy_bot, "backup_confirm")

    response = await AsyncWebhookClient(response_url).send(text="Backup confirmed", replace_original=True)

    assert response.status_code == 200
    assert slack.ephemeral_for(ALICE) == [card]
    assert (card.text, card.blocks, card.visible_to) == ("Backup confirmed", [], ALICE)
    assert slack.buttons(card) == []
    assert card.history[0].blocks == CARD_BLOCKS
    [post] = await slack.wait_for_responses()
    assert (post.body["replace_original"], post.message) == (True, card)


async def test_click_response_url_deletes_the_card(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    card, response_url = await click_and_get_response_url(slack, toy_bot, "backup_cancel")

    response = await AsyncWebhookClient(response_url).send(delete_original=True)

    assert response.status_code == 200
    assert card.deleted
    assert slack.ephemeral_for(ALICE) == []
    with pytest.raises(LookupError, match="deleted"):
        await slack.click(toy_bot.url, user_id=ALICE, message=card, action_id="backup_confirm")


async def test_command_response_url_replaces_the_ack_but_not_what_it_posted(
    slack: SlackStandIn, toy_bot: ToyBot
) -> None:
    toy_bot.ack_with({"text": "Working on it"})
    result = await slack.send_command(toy_bot.url, user_id=ALICE, channel_id=OPS, text="redis-prod")
    webhook = AsyncWebhookClient(result.response_url)

    replaced = await webhook.send(text="Here is the card", replace_original=True)
    posted = await webhook.send(text="A second answer", replace_original=False)
    again = await webhook.send(text="The card, again", replace_original=True)

    assert (replaced.status_code, posted.status_code, again.status_code) == (200, 200, 200)
    assert result.message is not None
    assert [m.text for m in slack.ephemeral_for(ALICE)] == ["The card, again", "A second answer"]
    assert [c.text for c in result.message.history] == ["Working on it", "Here is the card"]


async def test_command_response_url_without_an_ack_posts_anew(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    result = await slack.send_command(toy_bot.url, user_id=ALICE, channel_id=OPS, text="redis-prod")
    webhook = AsyncWebhookClient(result.response_url)

    await webhook.send(text="Here is the card", replace_original=True)
    await webhook.send(text="Replaced?", replace_original=True)

    assert result.message is None
    assert [m.text for m in slack.ephemeral_for(ALICE)] == ["Here is the card", "Replaced?"]


async def test_in_channel_response_is_visible_to_everyone(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    _, response_url = await click_and_get_response_url(slack, toy_bot, "backup_confirm")

    await AsyncWebhookClient(response_url).send(text="@alice started a backup", response_type="in_channel")
    [posted] = slack.channel_messages(OPS)
    await AsyncWebhookClient(response_url).send_dict({"text": "done", "thread_ts": posted.ts})

    assert posted.visible_to is None
    assert posted.author == "U0DCSBOT"
    [reply] = slack.thread(OPS, posted.ts)
    assert (reply.text, reply.visible_to) == ("done", ALICE)


async def test_response_url_works_five_times(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    _, response_url = await click_and_get_response_url(slack, toy_bot, "backup_confirm")
    webhook = AsyncWebhookClient(response_url)

    statuses = [(await webhook.send(text=f"update {n}", replace_original=True)).status_code for n in range(6)]
    sixth = (await slack.wait_for_responses(6))[-1]

    assert statuses == [200, 200, 200, 200, 200, 404]
    assert sixth.answer == "used_url"


async def test_response_url_expires_after_thirty_minutes(
    slack: SlackStandIn, toy_bot: ToyBot, clock: FakeClock
) -> None:
    _, response_url = await click_and_get_response_url(slack, toy_bot, "backup_confirm")
    clock.advance(30 * 60 + 1)

    response = await AsyncWebhookClient(response_url).send(text="too late", replace_original=True)

    assert (response.status_code, response.body) == (404, "expired_url")


async def test_bad_response_url_posts(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    _, response_url = await click_and_get_response_url(slack, toy_bot, "backup_confirm")

    unknown = await AsyncWebhookClient(f"{slack.base_url}/response/nope").send(text="hi")
    empty = await AsyncWebhookClient(response_url).send_dict({"replace_original": True})
    async with aiohttp.ClientSession() as session, session.post(response_url, data="not json") as response:
        not_json = (response.status, await response.text())

    assert (unknown.status_code, unknown.body) == (404, "invalid_token")
    assert (empty.status_code, empty.body) == (400, "no_text")
    assert not_json == (400, "invalid_payload")
    state = slack.response_url_state(response_url)
    assert state is not None
    assert state.uses == 0


async def test_original_message_gone_or_absent(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    _, response_url = await click_and_get_response_url(slack, toy_bot, "backup_cancel")
    webhook = AsyncWebhookClient(response_url)
    command_url = slack.issue_response_url(channel_id=OPS, user_id=ALICE)

    statuses = [
        (await webhook.send(delete_original=True)).status_code,
        (await webhook.send(delete_original=True)).status_code,
        (await webhook.send(text="back?", replace_original=True)).status_code,
        (await AsyncWebhookClient(command_url).send(delete_original=True)).status_code,
    ]

    assert statuses == [200, 404, 404, 200]
    assert slack.ephemeral_for(ALICE) == []


# ---- what people see ----------------------------------------------------------------------------------


async def test_transcript_of_a_backup_conversation(
    slack: SlackStandIn, toy_bot: ToyBot, client: AsyncWebClient
) -> None:
    _, response_url = await click_and_get_response_url(slack, toy_bot, "backup_confirm")
    await AsyncWebhookClient(response_url).send(
        text=f"Backup confirmed by <@{ALICE}>.", replace_original=True
    )
    posted = await client.chat_postMessage(
        channel=OPS, text=f"<@{ALICE}> started an AOF backup of *redis-prod*: backup_id `b-1`"
    )
    await client.chat_postMessage(channel=OPS, thread_ts=posted["ts"], text="Backup `b-1` succeeded (12 MB)")
    await client.chat_postMessage(channel="C0ALERTS", text="No fresh backup of redis-cache &lt;!here&gt;")

    assert slack.render_transcript() == (
        "--- #ops ---\n"
        '@alice: /dcs-backup redis-prod aof "before the migration"\n'
        "DCS Backup (only visible to @alice):\n"
        "    Back up *redis-prod* (AOF)?\n"
        "    Remark: before the migration\n"
        "    Request r-1 | expires in 5 min\n"
        "    [Confirm] [Cancel]\n"
        "@alice clicked [Confirm]\n"
        "DCS Backup updated the message (only visible to @alice): Backup confirmed by @alice.\n"
        "DCS Backup: @alice started an AOF backup of *redis-prod*: backup_id `b-1`\n"
        "    ↳ DCS Backup: Backup `b-1` succeeded (12 MB)\n"
        "\n"
        "--- C0ALERTS ---\n"
        "DCS Backup: No fresh backup of redis-cache <!here>\n"
    )


async def test_transcript_shows_deletions(slack: SlackStandIn, toy_bot: ToyBot) -> None:
    _, response_url = await click_and_get_response_url(slack, toy_bot, "backup_cancel")
    await AsyncWebhookClient(response_url).send(delete_original=True)

    assert slack.render_transcript().splitlines()[-2:] == [
        "@alice clicked [Cancel]",
        "DCS Backup deleted the message (only visible to @alice)",
    ]


DIRECTORY = Directory(
    bot_user_id="U0DCSBOT",
    bot_name="DCS Backup",
    user_names={ALICE: "alice"},
    channel_names={OPS: "ops"},
)


def test_block_kit_rendering() -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Backup of redis-prod"}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Instance*\nredis-prod"},
                {"type": "mrkdwn", "text": "*Format*\nAOF"},
            ],
            "accessory": {
                "type": "button",
                "action_id": "x",
                "text": {"type": "plain_text", "text": "Details"},
            },
        },
        {"type": "divider"},
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "by <@U0ALICE> in <#C0OPS>"},
                {"type": "image", "image_url": "https://example.invalid/x.png", "alt_text": "logo"},
            ],
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "<https://docs.example.invalid|docs> &amp; more"},
        },
        {"type": "video"},
    ]

    lines = [line for block in blocks for line in render_block(block, DIRECTORY)]

    assert lines == [
        "# Backup of redis-prod",
        "*Instance* redis-prod",
        "*Format* AOF",
        "[Details]",
        "---",
        "by @alice in #ops | [image: logo]",
        "docs (https://docs.example.invalid) & more",
        "[video block]",
    ]


def test_rich_text_inputs_and_selects() -> None:
    blocks: list[dict[str, Any]] = [
        {
            "type": "rich_text",
            "elements": [
                {
                    "type": "rich_text_section",
                    "elements": [
                        {"type": "text", "text": "Ping "},
                        {"type": "user", "user_id": ALICE},
                        {"type": "text", "text": " in "},
                        {"type": "channel", "channel_id": OPS},
                        {"type": "text", "text": " "},
                        {"type": "emoji", "name": "tada"},
                        {"type": "broadcast", "range": "here"},
                    ],
                },
                {
                    "type": "rich_text_quote",
                    "elements": [{"type": "link", "url": "https://example.invalid"}],
                },
            ],
        },
        {"type": "image", "image_url": "https://example.invalid/x.png", "alt_text": "graph"},
        {
            "type": "input",
            "label": {"type": "plain_text", "text": "Format"},
            "element": {"type": "static_select", "placeholder": {"type": "plain_text", "text": "Pick"}},
        },
        {"type": "actions", "elements": [{"type": "datepicker"}, "junk"]},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"hi <@U0DCSBOT> from <#{OPS}|ops>"}},
    ]

    lines = [line for block in blocks for line in render_block(block, DIRECTORY)]

    assert lines == [
        "Ping @alice in #ops :tada:@here",
        "https://example.invalid",
        "[image: graph]",
        "Format: [Pick v]",
        "[datepicker]",
        "hi @DCS Backup from #ops",
    ]
    assert DIRECTORY.author("USLACKBOT") == "Slackbot"
    assert DIRECTORY.author("U0DCSBOT") == "DCS Backup"


def test_text_only_messages_and_special_mentions() -> None:
    content = Content(
        text="<!subteam^S0SRE|@sre> see <@U0BOB> and <!channel>\n&lt;@U0ALICE&gt; stays literal"
    )

    assert render_content(content, DIRECTORY) == [
        "@sre see @u0bob and @channel",
        "<@U0ALICE> stays literal",
    ]
    assert render_content(Content(), DIRECTORY) == ["(empty message)"]


# ---- against a real Bolt app --------------------------------------------------------------------------


async def test_a_bolt_app_understands_commands_and_clicks(
    slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    bolt = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=slack.api_url), signing_secret=SECRET)
    listener_done = asyncio.Event()

    @bolt.command("/dcs-backup")
    async def on_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack(text=f"Back up {command['text']}?", blocks=CARD_BLOCKS)

    @bolt.action("backup_confirm")
    async def on_confirm(ack: AsyncAck, respond: AsyncRespond, say: AsyncSay, body: dict[str, Any]) -> None:
        await ack()
        await respond(text="Confirmed", replace_original=True)
        await say(text=f"<@{body['user']['id']}> started a backup")
        listener_done.set()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", events)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/slack/events"))
        result = await slack.send_command(url, user_id=ALICE, channel_id=OPS, text="redis-prod & co")
        assert result.message is not None
        status = await slack.click(url, user_id=ALICE, message=result.message, action_id="backup_confirm")
        # Bolt finishes the listener after acking; let it end before the servers shut down.
        await asyncio.wait_for(listener_done.wait(), timeout=5)
    [announcement] = slack.calls("chat.postMessage")

    assert (result.status, status) == (200, 200)
    assert result.message.text == "Confirmed"
    assert slack.buttons(result.message) == []
    assert announcement.params["channel"] == OPS
    assert [m.text for m in slack.channel_messages(OPS)] == [f"<@{ALICE}> started a backup"]
    assert slack.render_transcript().splitlines()[1] == "@alice: /dcs-backup redis-prod & co"


# ---- serving ------------------------------------------------------------------------------------------


async def test_start_serves_on_a_free_local_port(clock: FakeClock) -> None:
    standin = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN, clock=clock)
    url = await standin.start()
    try:
        response = await AsyncWebClient(token=TOKEN, base_url=standin.api_url).auth_test()
    finally:
        await standin.stop()

    assert url.startswith("http://127.0.0.1:")
    assert response["ok"] is True
    assert standin.app()[SLACK_STANDIN] is standin


async def test_response_urls_need_a_bound_base_url(clock: FakeClock) -> None:
    standin = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN, clock=clock)
    await standin.stop()  # harmless when never started

    with pytest.raises(RuntimeError, match="bind"):
        standin.issue_response_url(channel_id=OPS, user_id=ALICE)
