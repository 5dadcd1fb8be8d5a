"""Socket Mode in the Slack stand-in, driven by slack_sdk's aiohttp SocketModeClient, Bolt's
AsyncSocketModeHandler and bare aiohttp WebSocket clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.standins.slack.delivery import Inbound, PayloadKind
from bot.standins.slack.socket_mode import SocketModeDelivery
from bot.standins.slack.standin import SlackStandIn

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-1-A0DCSBACKUP-1-test"
OPS = "C0OPS"
ALICE = "U0ALICE"
# Small, so slack_sdk notices dead links quickly; only used where a test waits for that.
FAST_PING = 0.1

CARD_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Back up *redis-prod* (AOF)?"}},
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
        ],
    },
]


class Inbox:
    """Collects items and lets a test wait, without polling, for one that matches."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()

    def add(self, item: dict[str, Any]) -> None:
        self.items.append(item)
        self._arrived.set()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                found = next((item for item in self.items if predicate(item)), None)
                if found is not None:
                    return found
                self._arrived.clear()
                await self._arrived.wait()


@dataclass
class SdkApp:
    """An app on slack_sdk's SocketModeClient that acks every request with ``ack_payload``."""

    client: SocketModeClient
    messages: Inbox = field(default_factory=Inbox)
    ack_payload: dict[str, Any] | None = None

    async def on_message(
        self, client: AsyncBaseSocketModeClient, message: dict[str, Any], raw: str | None
    ) -> None:
        self.messages.add(message)

    async def on_request(self, client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        await client.send_socket_mode_response(SocketModeResponse(request.envelope_id, self.ack_payload))


@pytest.fixture(autouse=True)
def no_slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    standin = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN, app_token=APP_TOKEN)
    standin.add_channel(OPS, "ops")
    standin.set_user(ALICE, "alice")
    async with TestServer(standin.app(), host="127.0.0.1") as server:
        standin.bind(str(server.make_url("/")))
        yield standin


@asynccontextmanager
async def sdk_app(slack: SlackStandIn, *, ping_interval: float = 5.0) -> AsyncIterator[SdkApp]:
    client = SocketModeClient(
        app_token=APP_TOKEN,
        web_client=AsyncWebClient(token=TOKEN, base_url=slack.api_url),
        ping_interval=ping_interval,
    )
    app = SdkApp(client)
    client.message_listeners.append(app.on_message)
    client.socket_mode_request_listeners.append(app.on_request)
    try:
        await client.connect()  # type: ignore[no-untyped-call]
        yield app
    finally:
        await client.close()  # type: ignore[no-untyped-call]


async def open_url(slack: SlackStandIn) -> str:
    response = await AsyncWebClient(base_url=slack.api_url).apps_connections_open(app_token=APP_TOKEN)
    return str(response["url"])


async def ack_everything(ws: aiohttp.ClientWebSocketResponse, name: str) -> None:
    """A bare-bones app: answers each envelope with its own name until the link closes."""
    async for message in ws:
        envelope = json.loads(message.data)
        if "envelope_id" in envelope:
            await ws.send_json({"envelope_id": envelope["envelope_id"], "payload": {"text": name}})


# ---- apps.connections.open ----------------------------------------------------------------------------


async def test_connections_open_gives_a_local_websocket_url(slack: SlackStandIn) -> None:
    url = await open_url(slack)

    assert slack.base_url.startswith("http://127.0.0.1:")
    assert url.startswith(slack.base_url.replace("http://", "ws://") + "/socket/")
    [call] = slack.calls("apps.connections.open")
    assert call.headers["Authorization"] == f"Bearer {APP_TOKEN}"


async def test_connections_open_wants_the_app_token_in_the_header(slack: SlackStandIn) -> None:
    async def error_for(token: str) -> str:
        with pytest.raises(SlackApiError) as raised:
            await AsyncWebClient(base_url=slack.api_url).apps_connections_open(app_token=token)
        return str(raised.value.response["error"])

    assert await error_for("xapp-1-wrong") == "invalid_auth"
    assert await error_for(TOKEN) == "not_allowed_token_type"
    url = f"{slack.api_url}apps.connections.open"
    async with aiohttp.ClientSession() as session:
        async with session.post(url) as response:
            assert await response.json() == {"ok": False, "error": "not_authed"}
        async with session.post(url, data={"token": APP_TOKEN}) as response:
            assert await response.json() == {"ok": False, "error": "not_authed"}


async def test_the_app_token_is_no_bot_token(slack: SlackStandIn) -> None:
    with pytest.raises(SlackApiError) as raised:
        await AsyncWebClient(token=APP_TOKEN, base_url=slack.api_url).chat_postMessage(channel=OPS, text="x")

    assert raised.value.response["error"] == "not_allowed_token_type"


async def test_without_an_app_token_socket_mode_is_off() -> None:
    standin = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN)
    await standin.start()
    try:
        with pytest.raises(SlackApiError) as raised:
            await AsyncWebClient(base_url=standin.api_url).apps_connections_open(app_token=APP_TOKEN)
    finally:
        await standin.stop()

    assert raised.value.response["error"] == "invalid_auth"


async def test_scripted_failures_apply_to_connections_open(slack: SlackStandIn) -> None:
    slack.fail("apps.connections.open", "access_denied")

    with pytest.raises(SlackApiError) as raised:
        await open_url(slack)

    assert raised.value.response["error"] == "access_denied"


# ---- the WebSocket link -------------------------------------------------------------------------------


async def test_each_link_starts_with_hello(slack: SlackStandIn) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(await open_url(slack)) as first:
        hello = await first.receive_json()
        async with session.ws_connect(await open_url(slack)) as second:
            second_hello = await second.receive_json()
            newest = await slack.wait_for_socket(count=2)
            live = [c.number for c in slack.socket.live]

    assert hello["type"] == "hello"
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": "A0DCSBACKUP"}
    assert set(hello["debug_info"]) == {"host", "build_number", "approximate_connection_time"}
    assert second_hello["num_connections"] == 2
    assert (newest.number, live) == (2, [1, 2])


async def test_urls_are_single_use_and_an_outage_refuses_handshakes(slack: SlackStandIn) -> None:
    url = await open_url(slack)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url):
            pass
        with pytest.raises(aiohttp.WSServerHandshakeError) as reused:
            await session.ws_connect(url)
        slack.socket.refuse_connections()
        fresh = await open_url(slack)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(fresh)
        slack.socket.refuse_connections(False)
        async with session.ws_connect(fresh) as ws:
            hello = await ws.receive_json()

    assert (reused.value.status, refused.value.status) == (401, 503)
    assert hello["type"] == "hello"
    assert slack.socket.refused_handshakes == 1


async def test_pings_are_answered_with_their_payload(slack: SlackStandIn) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(await open_url(slack), autoping=False) as ws,
    ):
        await ws.receive_json()
        await ws.ping(b"sdk-ping-pong:123.5")
        pong = await ws.receive()

    assert (pong.type, pong.data) == (WSMsgType.PONG, b"sdk-ping-pong:123.5")
    [link] = slack.socket.connections
    assert link.pings == 1
    assert link.last_ping_at is not None


async def test_closing_from_the_client_is_recorded(slack: SlackStandIn) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(await open_url(slack)):
        link = await slack.wait_for_socket()
    await slack.wait_until(lambda: not slack.socket.live, what="the link to close")

    assert slack.socket.connections == [link]
    assert (link.live, link.closed_by, link.close_code) == (False, "client", 1000)
    assert link.closed_at is not None


async def test_stopping_the_standin_closes_its_links() -> None:
    standin = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN, app_token=APP_TOKEN)
    await standin.start()
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(await open_url(standin)) as ws:
            await ws.receive_json()
            await standin.wait_for_socket()
            await standin.stop()
            closing = await ws.receive()
    finally:
        await standin.stop()

    assert (closing.type, closing.data) == (WSMsgType.CLOSE, 1001)
    assert standin.socket.connections[0].closed_by == "server"


async def test_waiting_for_a_link_that_never_comes_says_so(slack: SlackStandIn) -> None:
    with pytest.raises(TimeoutError, match="Socket Mode links: 0 live of 0"):
        await slack.wait_for_socket(timeout=0.01)


# ---- envelopes ----------------------------------------------------------------------------------------


async def test_envelopes_go_to_one_link_at_a_time(slack: SlackStandIn) -> None:
    async with aiohttp.ClientSession() as session:
        async with (
            session.ws_connect(await open_url(slack)) as first,
            session.ws_connect(await open_url(slack)) as second,
        ):
            await slack.wait_for_socket(count=2)
            apps = [
                asyncio.create_task(ack_everything(first, "a")),
                asyncio.create_task(ack_everything(second, "b")),
            ]
            one = await slack.send_command(slack.socket_delivery(), user_id=ALICE, channel_id=OPS, text="1")
            two = await slack.send_command(slack.socket_delivery(), user_id=ALICE, channel_id=OPS, text="2")
        await asyncio.gather(*apps)

    assert {one.body, two.body} == {'{"text": "a"}', '{"text": "b"}'}
    assert sorted(c.envelopes_sent for c in slack.socket.connections) == [1, 1]


async def test_a_pinned_delivery_uses_its_link_only_and_fails_once_it_is_closed(slack: SlackStandIn) -> None:
    async with aiohttp.ClientSession() as session:
        async with (
            session.ws_connect(await open_url(slack)) as first,
            session.ws_connect(await open_url(slack)) as second,
        ):
            newest = await slack.wait_for_socket(count=2)
            apps = [
                asyncio.create_task(ack_everything(first, "a")),
                asyncio.create_task(ack_everything(second, "b")),
            ]
            pinned = slack.socket_delivery(newest)
            replies = [
                await slack.send_command(pinned, user_id=ALICE, channel_id=OPS, text=str(n)) for n in range(3)
            ]
            await slack.socket.drop(newest)
            after_close = await slack.send_command(pinned, user_id=ALICE, channel_id=OPS, text="late")
            spread = await slack.send_command(
                slack.socket_delivery(), user_id=ALICE, channel_id=OPS, text="x"
            )
        await asyncio.gather(*apps)

    assert [reply.body for reply in replies] == ['{"text": "b"}'] * 3
    assert {e.connection for e in slack.socket.envelopes[:3]} == {newest.number}
    assert (after_close.status, after_close.reply.error) == (0, "dispatch_failed")
    assert spread.body == '{"text": "a"}', "an unpinned delivery takes the link still open"


async def test_an_unacked_envelope_times_out_and_a_late_ack_is_recorded(slack: SlackStandIn) -> None:
    impatient = SocketModeDelivery(slack.socket, ack_timeout=0.05)
    async with aiohttp.ClientSession() as session, session.ws_connect(await open_url(slack)) as ws:
        await ws.receive_json()
        await slack.wait_for_socket()
        reply = await impatient.deliver(Inbound(PayloadKind.SLASH_COMMANDS, {"command": "/dcs-backup"}))
        envelope = await ws.receive_json()
        await ws.send_json({"envelope_id": envelope["envelope_id"]})
        await ws.send_str("not json")
        await slack.wait_until(lambda: len(slack.socket.stray_messages) == 1, what="the stray message")

    assert (reply.status, reply.error) == (0, "operation_timeout")
    [recorded] = slack.socket.envelopes
    assert (recorded.acked, recorded.late, recorded.ack_payload) == (True, True, None)
    assert slack.socket.stray_messages == ["not json"]


async def test_no_live_link_is_a_dispatch_failure_the_user_sees(slack: SlackStandIn) -> None:
    result = await slack.send_command(slack.socket_delivery(), user_id=ALICE, channel_id=OPS, text="help")

    assert (result.status, result.reply.error) == (0, "dispatch_failed")
    assert result.message is not None
    assert result.message.author == "USLACKBOT"
    assert result.message.visible_to == ALICE
    assert result.message.text == '/dcs-backup failed with the error "dispatch_failed"'
    assert slack.socket.envelopes == []


# ---- slack_sdk's SocketModeClient ---------------------------------------------------------------------


async def test_sdk_client_gets_hello_and_its_ack_becomes_the_ephemeral_reply(slack: SlackStandIn) -> None:
    async with sdk_app(slack) as app:
        hello = await app.messages.wait_for(lambda m: m.get("type") == "hello")
        app.ack_payload = {"text": "Back up redis-prod?", "blocks": CARD_BLOCKS}
        result = await slack.send_command(
            slack.socket_delivery(), user_id=ALICE, channel_id=OPS, text="redis-prod aof"
        )
        delivered = await app.messages.wait_for(lambda m: m.get("type") == "slash_commands")

    assert hello["connection_info"]["app_id"] == "A0DCSBACKUP"
    assert delivered["accepts_response_payload"] is True
    assert delivered["payload"]["text"] == "redis-prod aof"
    assert delivered["payload"]["user_id"] == ALICE
    assert delivered["payload"]["response_url"] == result.response_url
    assert result.status == 200
    assert result.message is not None
    assert (result.message.text, result.message.visible_to) == ("Back up redis-prod?", ALICE)
    assert slack.buttons(result.message)[0].action_id == "backup_confirm"
    [envelope] = slack.socket.envelopes
    assert (envelope.type, envelope.acked, envelope.late) == ("slash_commands", True, False)


async def test_sdk_client_receives_clicks_as_interactive_envelopes(slack: SlackStandIn) -> None:
    async with sdk_app(slack) as app:
        await slack.wait_for_socket()
        app.ack_payload = {"text": "Back up redis-prod?", "blocks": CARD_BLOCKS}
        result = await slack.send_command(slack.socket_delivery(), user_id=ALICE, channel_id=OPS, text="x")
        assert result.message is not None
        app.ack_payload = None
        status = await slack.click(
            slack.socket_delivery(), user_id=ALICE, message=result.message, action_id="backup_confirm"
        )
        click = await app.messages.wait_for(lambda m: m.get("type") == "interactive")

    assert status == 200
    assert click["accepts_response_payload"] is False
    assert click["payload"]["type"] == "block_actions"
    assert click["payload"]["actions"][0]["action_id"] == "backup_confirm"
    assert click["payload"]["user"]["id"] == ALICE


async def test_sdk_client_reconnects_after_the_server_closes_the_link(slack: SlackStandIn) -> None:
    async with sdk_app(slack) as app:
        first = await slack.wait_for_socket()
        [dropped] = await slack.socket.drop()
        second = await slack.wait_for_socket(newer_than=first)
        app.ack_payload = {"text": "still here"}
        result = await slack.send_command(slack.socket_delivery(), user_id=ALICE, channel_id=OPS, text="x")

    assert (dropped.closed_by, dropped.close_code) == ("server", 1001)
    assert second.number > first.number
    assert len(slack.calls("apps.connections.open")) >= 2
    assert result.message is not None
    assert result.message.text == "still here"
    assert slack.socket.envelopes[-1].connection == second.number


async def test_sdk_client_answers_a_disconnect_warning_by_reconnecting(slack: SlackStandIn) -> None:
    async with sdk_app(slack):
        first = await slack.wait_for_socket()
        [warned] = await slack.socket.drop(reason="warning", grace=5.0)
        await slack.wait_for_socket(newer_than=first)

    # slack_sdk closes the old link itself once told to reconnect.
    assert (warned.disconnect_reason, warned.closed_by) == ("warning", "client")


async def test_sdk_client_rides_out_a_cut_link_and_an_outage(slack: SlackStandIn) -> None:
    async with sdk_app(slack, ping_interval=FAST_PING) as app:
        first = await slack.wait_for_socket()
        slack.socket.refuse_connections()
        [cut] = await slack.socket.drop(abrupt=True)
        await slack.wait_until(lambda: slack.socket.refused_handshakes >= 1, what="a reconnect attempt")
        connected_during_outage = await app.client.is_connected()
        during = await slack.send_command(slack.socket_delivery(), user_id=ALICE, channel_id=OPS, text="x")

        slack.socket.refuse_connections(False)
        await slack.wait_for_socket(newer_than=first)
        app.ack_payload = {"text": "back"}
        after = await slack.send_command(slack.socket_delivery(), user_id=ALICE, channel_id=OPS, text="y")
        connected_after = await app.client.is_connected()

    assert cut.closed_by == "server"
    assert connected_during_outage is False
    assert during.reply.error == "dispatch_failed"
    assert (connected_after, after.status) == (True, 200)


async def test_sdk_client_notices_a_half_open_link(slack: SlackStandIn) -> None:
    async with sdk_app(slack, ping_interval=FAST_PING):
        first = await slack.wait_for_socket()
        slack.socket.stall()
        second = await slack.wait_for_socket(newer_than=first)

    assert first.stalled is True
    assert first.closed_by == "client"
    assert second.stalled is False


# ---- Bolt's AsyncSocketModeHandler ----------------------------------------------------------------------


async def test_a_bolt_app_in_socket_mode_handles_commands_and_clicks(slack: SlackStandIn) -> None:
    bolt = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=slack.api_url), signing_secret=SECRET)
    clicked = asyncio.Event()

    @bolt.command("/dcs-backup")
    async def on_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack(text=f"Back up {command['text']}?", blocks=CARD_BLOCKS)

    @bolt.action("backup_confirm")
    async def on_confirm(ack: AsyncAck, respond: AsyncRespond) -> None:
        await ack()
        await respond(text="Confirmed", replace_original=True)
        clicked.set()

    handler = AsyncSocketModeHandler(bolt, APP_TOKEN)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        await slack.wait_for_socket()
        result = await slack.send_command(
            slack.socket_delivery(), user_id=ALICE, channel_id=OPS, text="redis-prod"
        )
        assert result.message is not None
        status = await slack.click(
            slack.socket_delivery(), user_id=ALICE, message=result.message, action_id="backup_confirm"
        )
        await asyncio.wait_for(clicked.wait(), timeout=5)
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]

    assert (result.status, status) == (200, 200)
    assert result.message.visible_to == ALICE
    assert result.message.text == "Confirmed"
    assert slack.buttons(result.message) == []
    assert [c.method for c in slack.calls()][:2] == ["apps.connections.open", "auth.test"]
    assert all(envelope.acked for envelope in slack.socket.envelopes)


async def test_auth_test_knows_only_the_bot_token(slack: SlackStandIn) -> None:
    with pytest.raises(SlackApiError) as raised:
        await AsyncWebClient(token=APP_TOKEN, base_url=slack.api_url).auth_test()
    bot = await AsyncWebClient(token=TOKEN, base_url=slack.api_url).auth_test()

    assert raised.value.response["error"] == "invalid_auth"
    assert (bot["user_id"], bot["team_id"], bot["bot_id"]) == ("U0DCSBOT", "T0DEMO", "B0DCSBOT")
