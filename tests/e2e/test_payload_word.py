"""Bolt takes any form body containing "payload" for an interaction; commands mentioning it still work."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ALICE, OPS, World


@pytest.mark.parametrize(
    "remark",
    ["payload", "payload=", "rotate the payload=1&payload=2 keys", "PAYLOAD migration"],
)
async def test_a_remark_mentioning_payload_still_gets_a_card(world: World, remark: str) -> None:
    card = await world.card(f'redis-prod rdb "{remark}"')
    await world.click(card, "backup_confirm")
    await world.channel_message(OPS)

    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert backup.remark == remark


async def test_an_unquoted_payload_remark_still_gets_a_card(world: World) -> None:
    card = await world.card("redis-prod aof payload= drill")

    assert "payload= drill" in str(card.blocks)


@pytest.mark.parametrize("channel_name", ["payload", "payload-ops", "ops-payload="])
async def test_a_channel_named_payload_still_reaches_the_handler(world: World, channel_name: str) -> None:
    result = await world.slack.send_command(
        world.bot_url, user_id=ALICE, text="redis-prod rdb", channel_id=OPS, channel_name=channel_name
    )
    assert result.status == 200

    card = await world.reply_to(ALICE)
    assert world.slack.buttons(card)


async def test_a_usage_error_mentioning_payload_is_still_answered_in_the_ack(world: World) -> None:
    result = await world.command("redis-prod payload")

    assert result.status == 200
    assert result.message is not None
    assert '"payload" is not a backup format' in result.message.shown
