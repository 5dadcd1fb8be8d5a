"""More of ``/dcs-backup list`` and ``/dcs-backup status``: every field of a record, newest first, the
live status of a backup the bot started, and the answers when there is nothing to show."""

from __future__ import annotations

from bot.standins.dcs.control import EmulatedBackup, ManualClock
from bot.standins.slack.timeline import Message
from tests.e2e.conftest import ALICE, OPS, RANDOM, VIEWER, StandInsFactory, World, WorldFactory


async def ask(world: World, text: str, *, user: str = ALICE, channel: str = OPS) -> Message:
    """The answer ``user`` gets to ``/dcs-backup text``."""
    seen = len(world.slack.ephemeral_for(user))
    result = await world.command(text, user=user, channel=channel)
    assert result.status == 200, result.body
    return await world.reply_to(user, seen + 1)


def records_shown(reply: Message) -> list[dict[str, str]]:
    """Each record's ``*Label*\\nvalue`` fields as {label: value}, in the order shown, with its backup_id
    (from the small context line under it) as "Backup"."""
    shown: list[dict[str, str]] = []
    for block in reply.blocks:
        if "fields" in block:
            pairs = (item["text"].partition("\n") for item in block["fields"])
            shown.append({label.strip("*"): value for label, _, value in pairs})
        elif block["type"] == "context" and shown and "Backup" not in shown[-1]:
            for element in block["elements"]:
                if element["text"].startswith("backup_id "):
                    shown[-1]["Backup"] = element["text"].removeprefix("backup_id ")
    return shown


def slack_date(moment: float) -> str:
    return f"<!date^{int(moment)}^"


async def test_list_shows_the_newest_backup_first_with_all_its_fields(world: World) -> None:
    prod = world.prod.instance_id
    now = world.dcs.now()
    oldest = world.dcs.add_backup(prod, created_at=now - 86400, size=3 * 1024**2)
    failed = world.dcs.add_backup(
        prod,
        backup_type="manual",
        outcome="failed",
        error_code="dcs.08.0002",
        backup_format="aof",
        remark="before <the> release",
        created_at=now - 7200,
    )
    running = world.dcs.add_backup(prod, backup_type="manual", remark="now", waiting_seconds=600)

    reply = await ask(world, "list redis-prod", user=VIEWER, channel=RANDOM)

    assert reply.is_ephemeral
    assert reply.blocks[0]["text"]["text"] == "Recent backups of *redis-prod* (newest first, 3 of 3):"
    assert f"Instance ID `{prod}`" in reply.shown
    assert reply.text == "Recent backups of redis-prod."
    shown = records_shown(reply)
    assert [{k: v for k, v in record.items() if k != "Created"} for record in shown] == [
        {
            "Backup": f"`{running.backup_id}`",
            "Type": "manual · RDB",
            "Status": "Waiting",
            "Size": "—",
            "Remark": "now",
        },
        {
            "Backup": f"`{failed.backup_id}`",
            "Type": "manual · AOF",
            "Status": "Failed — `dcs.08.0002` the backup timed out",
            "Size": "—",
            "Remark": "before &lt;the&gt; release",
        },
        {
            "Backup": f"`{oldest.backup_id}`",
            "Type": "auto · RDB",
            "Status": "Succeeded",
            "Size": "3.0 MiB",
            "Remark": "—",
        },
    ]
    for record, backup in zip(shown, (running, failed, oldest), strict=True):
        assert record["Created"].startswith(slack_date(backup.created_at))


async def test_list_of_an_instance_without_backups_says_so(world: World) -> None:
    reply = await ask(world, "list redis-staging")

    assert reply.shown == f"*redis-staging* has no backups yet.\nInstance ID `{world.staging.instance_id}`"
    assert reply.text == "redis-staging has no backups yet."


async def test_status_follows_a_backup_started_through_the_bot_live(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory
) -> None:
    clock = ManualClock()
    stand_ins = await stand_ins_factory(dcs_clock=clock)
    stand_ins.dcs.waiting_seconds, stand_ins.dcs.backuping_seconds = 5.0, 60.0
    world = await world_factory(stand_ins=stand_ins)
    card = await world.card('redis-prod rdb "watch me"')
    await world.click(card, "backup_confirm")
    await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)

    async def status_field() -> str:
        [record] = records_shown(await ask(world, f"status {backup.backup_id}"))
        return record["Status"]

    assert await status_field() == "Waiting"
    clock.advance(35)
    assert await status_field() == "Running (50 %)"
    clock.advance(30)
    reply = await ask(world, f"status {backup.backup_id}")
    [record] = records_shown(reply)
    assert reply.blocks[0]["text"]["text"] == f"Backup of *redis-prod* requested by <@{ALICE}>."
    assert f"Instance ID `{world.prod.instance_id}`" in reply.shown
    assert (record["Status"], record["Size"], record["Remark"]) == (
        "Succeeded",
        f"{backup.size / 1024**2:.1f} MiB",
        "watch me",
    )


async def test_status_is_refused_to_someone_without_the_status_action(world: World) -> None:
    backup = await bot_backup(world)

    reply = await ask(world, f"status {backup.backup_id}", user=VIEWER)

    assert reply.shown.startswith(":no_entry: You may not")
    assert backup.backup_id not in reply.shown


async def test_status_of_a_backup_dcs_no_longer_keeps_says_so(world: World) -> None:
    backup = await bot_backup(world)
    # DCS keeps the 24 newest records of an instance and silently drops older ones.
    for _ in range(24):
        world.dcs.add_backup(world.prod.instance_id, created_at=world.dcs.now() + 1)

    reply = await ask(world, f"status {backup.backup_id}")

    assert "DCS shows no record of it (any more)." in reply.shown
    assert f"backup_id `{backup.backup_id}`" in reply.shown


async def bot_backup(world: World) -> EmulatedBackup:
    card = await world.card('redis-prod aof "asked about"')
    await world.click(card, "backup_confirm")
    await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    return backup
