"""Following backups to their end: outcome notices in the thread, exactly once."""

from __future__ import annotations

from tests.e2e.conftest import OPS, World


async def _start_backup(world: World, text: str = 'redis-prod aof "tracked"') -> str:
    card = await world.card(text)
    assert await world.click(card, "backup_confirm") == 200
    started = await world.channel_message(OPS)
    return started.ts


async def test_success_is_announced_in_the_thread(world: World) -> None:
    ts = await _start_backup(world)
    await world.slack.wait_until(
        lambda: len(world.slack.thread(OPS, ts)) >= 1, timeout=5, what="thread reply"
    )
    reply = world.slack.thread(OPS, ts)[0]
    assert "succeeded" in reply.text
