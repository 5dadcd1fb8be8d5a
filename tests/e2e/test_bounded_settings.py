"""The longest confirmation and approval times the settings allow still give working cards (a TTL of
1e12 seconds used to be accepted and then failed every command with "something went wrong")."""

from __future__ import annotations

from bot.config import BOUNDS
from tests.e2e.conftest import OPS, WorldFactory


async def test_the_longest_allowed_ttls_still_work(world_factory: WorldFactory) -> None:
    world = await world_factory(
        bot_confirm_ttl=BOUNDS["bot_confirm_ttl"].high, bot_approval_ttl=BOUNDS["bot_approval_ttl"].high
    )
    card = await world.card('redis-prod rdb "a long time to think"')
    assert "something went wrong" not in card.shown

    assert await world.click(card, "backup_confirm") == 200
    posted = await world.channel_message(OPS)

    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert backup.backup_id in posted.shown
