"""What DCS refuses reaches the channel with its error code, message and a plain-language hint; what DCS
cannot answer while the bot looks an instance up is a polite "try again" that changes nothing."""

from __future__ import annotations

import socket

import pytest

from bot.core.rules.backup_request import RequestState
from bot.standins.slack.timeline import Message
from tests.e2e.conftest import ALICE, OPS, World, WorldFactory


async def confirmed_failure(world: World, text: str = "redis-prod rdb") -> Message:
    card = await world.card(text)
    return await confirm(world, card)


async def confirm(world: World, card: Message) -> Message:
    await world.click(card, "backup_confirm")
    posted = await world.channel_message(OPS)
    assert not posted.is_ephemeral
    assert ":x:" in posted.shown and "*not* started" in posted.shown
    assert f"<@{ALICE}>" in posted.shown and "redis-prod" in posted.shown
    return posted


def everything_in(message: Message) -> str:
    return message.shown + "\n" + str(message.blocks)


async def test_a_backup_already_running_is_reported_with_dcs_4096(world: World) -> None:
    world.dcs.add_backup(world.prod.instance_id, backup_type="auto", backuping_seconds=3600)

    posted = await confirmed_failure(world)

    shown = everything_in(posted)
    assert "`DCS.4096`" in shown
    assert "The DCS instance is being backed up." in shown
    assert "A backup of this instance is already running" in shown
    assert "DCS request ID" in shown
    assert world.dcs.calls_to("create_backup")[0].status == 400
    assert len(world.dcs.backups_of(world.prod.instance_id)) == 1
    [request] = await world.requests()
    assert (request.error_code, request.backup_id) == ("DCS.4096", None)


async def test_an_instance_that_stops_running_after_the_card_is_reported_with_dcs_4049(world: World) -> None:
    card = await world.card("redis-prod rdb")
    world.dcs.set_status(world.prod.instance_id, "RESTARTING")

    posted = await confirm(world, card)

    shown = everything_in(posted)
    assert "`DCS.4049`" in shown
    assert "The DCS instance is not in the Running state." in shown
    assert "The instance is not running, so it cannot be backed up now." in shown
    assert world.dcs.backups_of(world.prod.instance_id) == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_server_error_on_create_backup_is_an_unknown_outcome_not_a_refusal(
    world_factory: WorldFactory, status: int
) -> None:
    # After a 5xx the backend may have run: the bot says it does not know, and looks.
    world = await world_factory(dcs_timeout=0.3)
    world.dcs.inject_fault(endpoint="create_backup", status=status)
    card = await world.card("redis-prod rdb")

    await world.click(card, "backup_confirm")

    checking = await world.channel_message(OPS)
    assert checking.shown.startswith(":hourglass_flowing_sand: *Outcome unknown, checking.*")
    assert f"HTTP {status}" in checking.shown
    final = await world.channel_message(OPS, 2, timeout=10)
    assert final.shown.startswith(":x: *No backup was created*")
    said = world.sent_by_bot()
    assert "not started" not in said and "not* started" not in said
    assert world.backups_created() == 1
    assert world.dcs.backups_of(world.prod.instance_id) == []


async def test_a_throttled_create_backup_is_a_refusal(world: World) -> None:
    # A 429 is the gateway turning the call away before the backend sees it.
    world.dcs.inject_fault(endpoint="create_backup", status=429)

    posted = await confirmed_failure(world)

    assert "HTTP 429" in everything_in(posted) or "`APIGW" in everything_in(posted)
    assert world.backups_created() == 1
    [request] = await world.requests()
    assert request.state == RequestState.API_FAILED


async def cloud_trouble_reply(world: World) -> Message:
    result = await world.command("redis-prod rdb")
    assert result.status == 200
    reply = await world.reply_to(ALICE)
    assert reply.is_ephemeral and world.slack.buttons(reply) == []
    assert "could not get an answer from DCS" in reply.shown
    assert "Nothing was changed; please try again" in reply.shown
    assert world.backups_created() == 0
    assert world.slack.channel_messages(OPS) == []
    assert await world.requests() == []
    return reply


async def test_dcs_unreachable_while_resolving_is_a_polite_try_again(world_factory: WorldFactory) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    world = await world_factory(dcs_endpoint=f"http://127.0.0.1:{closed_port}")

    reply = await cloud_trouble_reply(world)

    assert "could not be reached" in reply.shown
    assert str(closed_port) not in reply.shown, "the transport detail belongs in the log, not in Slack"


async def test_dcs_unavailable_while_resolving_is_a_polite_try_again(world_factory: WorldFactory) -> None:
    # Reads are retried within DCS_TIMEOUT; an outage that outlasts it is what the person hears about.
    world = await world_factory(dcs_timeout=1)
    world.dcs.inject_fault(endpoint="show_instance", status=503, times=100)

    reply = await cloud_trouble_reply(world)

    assert "503" in reply.shown
    assert world.dcs.calls_to("create_backup") == []
