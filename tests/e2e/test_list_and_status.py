"""``/dcs-backup list <instance>`` and ``/dcs-backup status <backup_id>``: read-only, policy-checked."""

from __future__ import annotations

from tests.e2e.conftest import ALICE, BOB, OPS, RANDOM, VIEWER, World


async def started_backup(world: World) -> str:
    card = await world.card('redis-prod aof "listed"')
    await world.click(card, "backup_confirm")
    await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    return backup.backup_id


async def test_list_shows_recent_backups_to_a_viewer_anywhere(world: World) -> None:
    backup_id = await started_backup(world)

    await world.command("list redis-prod", user=VIEWER, channel=RANDOM)
    reply = await world.reply_to(VIEWER)

    assert reply.is_ephemeral
    shown = str(reply.blocks)
    assert backup_id in shown and "listed" in shown and "manual" in shown
    assert world.backups_created() == 1


async def test_list_is_refused_without_the_list_action(world: World) -> None:
    await world.command("list redis-staging", user=BOB)
    reply = await world.reply_to(BOB)

    assert ":no_entry:" in reply.shown
    assert world.dcs.calls_to("list_backups") == []


async def test_status_shows_a_backup_started_through_the_bot(world: World) -> None:
    backup_id = await started_backup(world)

    await world.command(f"status {backup_id.upper()}")
    reply = await world.reply_to(ALICE, 2)

    shown = str(reply.blocks)
    assert backup_id in shown and f"<@{ALICE}>" in shown and "redis-prod" in shown


async def test_status_of_a_backup_the_bot_did_not_start_says_so(world: World) -> None:
    await world.command("status 8a5f9c2e-3b4d-4e6f-9a1b-2c3d4e5f6a7b")
    reply = await world.reply_to(ALICE)

    assert "was started through this bot" in reply.shown
