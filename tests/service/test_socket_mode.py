"""Socket Mode end to end: the bot built by create_app with an app-level token and no signing secret,
against the Slack stand-in speaking Socket Mode. The scenarios of HTTP mode work the same over the socket;
the connection is watched, re-established after a drop, and reported by /healthz."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.bootstrap import create_app
from bot.config import ConfigError
from bot.policy_file import PolicyHolder
from bot.standins.faults import Answer, Fault
from bot.standins.slack.socket_mode import DisconnectReason, SocketConnection
from tests.e2e.conftest import DEFAULT_POLICY, OPS, StandIns, bot_settings
from tests.service.conftest import APP_TOKEN, SECRETS, Service, ServiceFactory, serve, socket_mode_slack

# Small, so that reconnecting after an outage is quick; slack_sdk waits this long between attempts.
FAST_PING = 0.5
POLL = 0.05


async def socket_service(factory: ServiceFactory, **app_options: object) -> tuple[Service, SocketConnection]:
    service = await factory(socket_mode=True, app_options=app_options)
    link = await service.slack.wait_for_socket()
    return service, link


async def backup_over_the_socket(service: Service, remark: str) -> str:
    """Command, card, confirm, backup_id in the channel, outcome in its thread; returns the backup_id."""
    before = len(service.slack.channel_messages(OPS))
    card = await service.card(f'redis-prod aof "{remark}"')
    command = service.slack.socket.envelopes[-1]
    # The ack comes at once saying what is looked up; the card replaces it through the command's
    # response_url.
    assert command.type == "slash_commands" and command.acked
    assert command.ack_payload == {"text": "Looking up *redis-prod*…", "response_type": "ephemeral"}
    assert card.source == "ack" and card.history and card.history[0].text == "Looking up *redis-prod*…"
    assert card.is_ephemeral and {b.action_id for b in service.slack.buttons(card)} == {
        "backup_confirm",
        "backup_cancel",
    }

    assert await service.click(card, "backup_confirm") == 200
    started = await service.channel_message(OPS, before + 1)
    backup = service.dcs.backups_of(service.prod.instance_id)[0]
    assert backup.remark == remark and backup.backup_id in started.shown
    outcome = await service.slack.wait_for_message(lambda m: m.thread_ts == started.ts and m.ts != started.ts)
    assert "succeeded" in outcome.shown and backup.backup_id in outcome.shown
    return backup.backup_id


async def wait_for_health(service: Service, status: int, socket_check: str, timeout: float = 15.0) -> None:
    """Polls /healthz with short sleeps until it answers ``status`` with a socket check starting
    with ``socket_check``."""
    seen: tuple[int, dict[str, Any]] | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                seen = await service.health()
                if seen[0] == status and seen[1]["socket"].startswith(socket_check):
                    return
                await asyncio.sleep(POLL)
    except TimeoutError:
        raise AssertionError(f"/healthz never became {status} {socket_check!r}; last: {seen}") from None


async def test_a_backup_works_over_the_socket(service_factory: ServiceFactory) -> None:
    service, link = await socket_service(service_factory)

    await backup_over_the_socket(service, "over the socket")

    envelopes = service.slack.socket.envelopes
    assert [e.type for e in envelopes] == ["slash_commands", "interactive"]
    assert all(e.acked and not e.late and e.connection == link.number for e in envelopes)
    assert service.slack.calls("apps.connections.open"), "the bot asked for its WebSocket URL"
    sent = service.sent_by_bot() + "\n".join(service.log_lines())
    assert not [secret for secret in SECRETS if secret in sent]


async def test_a_usage_error_is_answered_in_the_ack(service_factory: ServiceFactory) -> None:
    service, _ = await socket_service(service_factory)

    result = await service.command("redis-prod --frobnicate")

    assert result.status == 200
    ack = service.slack.socket.envelopes[-1].ack_payload
    assert isinstance(ack, dict) and ack["text"], "the usage text travels in the envelope's ack"
    assert result.message is not None and result.message.is_ephemeral
    assert result.message.source == "ack" and result.message.text == ack["text"]
    assert service.backups_created() == 0


async def test_only_operations_endpoints_are_served_over_http(service_factory: ServiceFactory) -> None:
    service, _ = await socket_service(service_factory)
    await wait_for_health(service, 200, "ok (connected)")

    events, _ = await service.get("/slack/events", base=service.base_url)
    posted = await service.slack.send_command(
        service.bot_url, user_id="UALICE1", text="redis-prod", channel_id=OPS
    )
    status, checks = await service.health()
    metrics_status, metrics = await service.get("/metrics")
    live, _ = await service.get("/livez")
    ready, _ = await service.get("/readyz")

    assert events == 404 and posted.status == 404, "Socket Mode serves no Slack events over HTTP"
    assert status == 200 and checks["socket"] == "ok (connected)"
    assert (live, ready) == (200, 200), "without BOT_OPS_PORT the probes are on PORT"
    assert metrics_status == 200 and "dcs_bot_socket_mode_connected 1.0" in metrics


@pytest.mark.parametrize(
    ("reason", "abrupt"),
    [
        pytest.param("refresh_requested", False, id="asked-to-reconnect"),
        pytest.param(None, False, id="closed"),
        pytest.param(None, True, id="cut-without-close-frame"),
    ],
)
async def test_the_bot_reconnects_after_slack_drops_the_link(
    service_factory: ServiceFactory, reason: DisconnectReason | None, abrupt: bool
) -> None:
    service, first = await socket_service(service_factory, socket_ping_interval=FAST_PING)
    await backup_over_the_socket(service, "before the drop")

    # As Slack does, a link asked to reconnect gets time to close itself; the bot replaces it at once.
    await service.slack.socket.drop(reason=reason, grace=5.0 if reason else 0.0, abrupt=abrupt)
    await service.slack.wait_for_socket(newer_than=first)
    await backup_over_the_socket(service, "after the drop")

    assert first.closed_at is not None
    [now_live] = service.slack.socket.live
    assert now_live.number > first.number
    assert service.slack.socket.envelopes[-1].connection == now_live.number
    assert len(service.dcs.backups_of(service.prod.instance_id)) == 2


async def test_a_link_that_went_deaf_is_replaced(service_factory: ServiceFactory) -> None:
    service, first = await socket_service(service_factory, socket_ping_interval=FAST_PING)

    # Half-open: the stand-in still counts the link as live, but pongs and acks never arrive.
    service.slack.socket.stall(first)
    await service.slack.wait_for_socket(newer_than=first, timeout=15)
    await backup_over_the_socket(service, "after the stall")

    assert service.slack.socket.envelopes[-1].connection != first.number


async def test_a_short_outage_keeps_the_bot_healthy(service_factory: ServiceFactory) -> None:
    service, first = await socket_service(service_factory, socket_ping_interval=FAST_PING)
    await wait_for_health(service, 200, "ok (connected)")

    service.slack.socket.refuse_connections()
    await service.slack.socket.drop()
    await wait_for_health(service, 200, "ok (reconnecting")
    service.slack.socket.refuse_connections(False)
    await service.slack.wait_for_socket(newer_than=first)

    await wait_for_health(service, 200, "ok (connected)")
    await backup_over_the_socket(service, "after the outage")


async def test_health_reports_a_socket_down_longer_than_the_grace(service_factory: ServiceFactory) -> None:
    service, first = await socket_service(
        service_factory, socket_ping_interval=FAST_PING, socket_down_grace=timedelta(seconds=0.2)
    )
    await wait_for_health(service, 200, "ok (connected)")

    service.slack.socket.refuse_connections()
    await service.slack.socket.drop()
    await wait_for_health(service, 503, "error: disconnected for")
    ready, _ = await service.get("/readyz")
    live, _ = await service.get("/livez")
    assert (ready, live) == (503, 200), "a lost link to Slack makes the bot unready, not dead"
    _, metrics = await service.get("/metrics")
    assert "dcs_bot_socket_mode_connected 0.0" in metrics
    socket = service.slack.socket
    await service.slack.wait_until(lambda: socket.refused_handshakes >= 2, what="attempts to reconnect")

    service.slack.socket.refuse_connections(False)
    await service.slack.wait_for_socket(newer_than=first)
    await wait_for_health(service, 200, "ok (connected)")
    await backup_over_the_socket(service, "after the outage")


async def test_a_refused_app_token_stops_start_up_with_one_line(tmp_path: Path, stand_ins: StandIns) -> None:
    servers: list[TestServer] = []
    slack = socket_mode_slack()
    slack.bind(await serve(slack.app(), servers))
    settings = bot_settings(
        tmp_path,
        slack,
        stand_ins.dcs_url,
        DEFAULT_POLICY,
        slack_signing_secret=None,
        slack_app_token="xapp-1-A0DCSBACKUP-1-revoked",
    )
    bot = TestServer(create_app(settings, PolicyHolder(settings.bot_policy)), host="127.0.0.1")
    try:
        with pytest.raises(ConfigError) as refused:
            async with asyncio.timeout(10):
                await bot.start_server()
    finally:
        await bot.close()
        for server in servers:
            await server.close()

    message = str(refused.value)
    assert message.startswith("SLACK_APP_TOKEN:") and "invalid_auth" in message and "\n" not in message
    assert "revoked" not in message, "the token itself is not repeated"
    assert slack.socket.connections == [], "no connection was attempted with a refused token"


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(Answer.TRUNCATED, target="apps.connections.open"), id="truncated"),
        pytest.param(Fault(Answer.HTML, target="apps.connections.open", status=502), id="html-502"),
        pytest.param(Fault(Answer.EMPTY, target="apps.connections.open"), id="empty"),
    ],
)
async def test_an_unreadable_answer_to_the_token_check_still_connects(
    tmp_path: Path, stand_ins: StandIns, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    servers: list[TestServer] = []
    slack = socket_mode_slack()
    slack.bind(await serve(slack.app(), servers))
    slack.inject(fault)
    settings = bot_settings(
        tmp_path,
        slack,
        stand_ins.dcs_url,
        DEFAULT_POLICY,
        slack_signing_secret=None,
        slack_app_token=APP_TOKEN,
    )
    bot = TestServer(create_app(settings, PolicyHolder(settings.bot_policy)), host="127.0.0.1")
    try:
        async with asyncio.timeout(10):
            await bot.start_server()
            await slack.wait_for_socket()
    finally:
        await bot.close()
        for server in servers:
            await server.close()

    assert "could not check the app-level token" in caplog.text and "connecting anyway" in caplog.text
    assert "Traceback" not in caplog.text
