"""The happy path of ``/dcs-backup``: command, ack, confirmation card, click, CreateBackup, channel post."""

from __future__ import annotations

import pytest

from bot.core.rules.audit import AuditKind
from bot.standins.slack.timeline import Message
from tests.e2e.conftest import ALICE, CAROL, OPS, DcsGate, World, WorldFactory, earlier_versions


def fields_of(card: Message) -> dict[str, str]:
    """The card's ``*Label*\\nvalue`` fields as {label: value}."""
    found: dict[str, str] = {}
    for block in card.blocks:
        for item in block.get("fields", []):
            label, _, value = item["text"].partition("\n")
            found[label.strip("*")] = value
    return found


async def test_backup_by_name_shows_a_card_then_posts_the_backup_id_in_the_channel(world: World) -> None:
    card = await world.card('redis-prod aof "before the migration"')

    assert card.is_ephemeral and card.visible_to == ALICE
    assert "redis-prod" in card.shown and world.prod.instance_id in card.shown
    assert fields_of(card) == {
        "Type": "master/standby · Redis 6.0",
        "Instance state": "Running",
        "Format": "AOF",
        "Remark": "before the migration",
    }
    buttons = {b.action_id: b for b in world.slack.buttons(card)}
    assert set(buttons) == {"backup_confirm", "backup_cancel"}
    assert buttons["backup_confirm"].style in ("primary", "danger")
    assert buttons["backup_confirm"].value == buttons["backup_cancel"].value
    assert world.backups_created() == 0
    assert world.slack.channel_messages(OPS) == []

    assert await world.click(card, "backup_confirm") == 200
    posted = await world.channel_message(OPS)

    assert world.slack.buttons(card) == [], "the card keeps no buttons once confirmed"
    assert earlier_versions(card), "the card was replaced through the click's response_url"
    assert "Confirmed by <@UALICE1>" in card.shown
    creates = world.dcs.calls_to("create_backup", instance_id=world.prod.instance_id)
    assert len(creates) == 1 and creates[0].status == 200
    backup = world.dcs.backups_of(world.prod.instance_id)[0]
    assert (backup.backup_format, backup.remark, backup.backup_type) == (
        "aof",
        "before the migration",
        "manual",
    )
    assert f"<@{ALICE}>" in posted.shown
    assert "redis-prod" in posted.shown
    assert backup.backup_id in posted.shown
    assert posted.source == "chat.postMessage" and not posted.is_ephemeral
    # The audit records the accepted call before the channel hears of it; the request row may follow later.
    [accepted] = [r.entry for r in await world.bot.audit.records() if r.entry.kind == AuditKind.API_RESULT]
    assert (accepted.outcome, accepted.backup_id) == ("accepted", backup.backup_id)


async def test_backup_by_instance_id_in_any_case(world: World) -> None:
    card = await world.card(f"{world.staging.instance_id.upper()} rdb")

    assert "redis-staging" in card.shown and world.staging.instance_id in card.shown
    assert fields_of(card)["Type"] == "Redis Cluster · Redis 6.0"
    assert world.dcs.calls_to("list_instances") == [], "an ID is shown directly, not searched by name"

    await world.click(card, "backup_confirm", user=ALICE)
    posted = await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.staging.instance_id)
    assert backup.backup_format == "rdb"
    assert backup.backup_id in posted.shown


async def test_format_and_remark_default_to_bot_default_format_and_the_requesters_name(
    world_factory: WorldFactory,
) -> None:
    world = await world_factory(bot_default_format="aof")
    card = await world.card("redis-prod")

    assert fields_of(card)["Format"] == "AOF"
    assert fields_of(card)["Remark"] == "Slack backup by @alice"

    await world.click(card, "backup_confirm")
    await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert (backup.backup_format, backup.remark) == ("aof", "Slack backup by @alice")


@pytest.mark.parametrize(
    ("text", "remark"),
    [
        ("redis-prod rdb “before the migration”", "before the migration"),
        ("redis-prod rdb ‘Bob’s test’", "Bob’s test"),
        ('redis-prod "quoted, no format"', "quoted, no format"),
        ("redis-prod RDB the rest of the line is the remark", "the rest of the line is the remark"),
        ("redis-prod rdb 5 < 6 & 7 > 3", "5 < 6 & 7 > 3"),
        ("redis-prod rdb \"it's 'fine'\"", "it's 'fine'"),
        ("redis-prod rdb typed &lt;b&gt; literally", "typed &lt;b&gt; literally"),
    ],
)
async def test_remark_forms_reach_dcs_verbatim(world: World, text: str, remark: str) -> None:
    card = await world.card(text)
    await world.click(card, "backup_confirm")
    await world.channel_message(OPS)

    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert (backup.backup_format, backup.remark) == ("rdb", remark)


async def test_a_remark_of_128_characters_after_unescaping_is_accepted(world: World) -> None:
    # Slack sends each "&" as "&amp;" (640 characters on the wire); the limit applies to what was typed.
    remark = "&" * 128
    card = await world.card(f'redis-prod rdb "{remark}"')
    await world.click(card, "backup_confirm")
    await world.channel_message(OPS)

    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert backup.remark == remark


async def test_a_group_member_may_back_up_through_the_group_rule(world: World) -> None:
    card = await world.card('redis-prod rdb "by a group member"', user=CAROL)
    await world.click(card, "backup_confirm", user=CAROL)
    posted = await world.channel_message(OPS)

    assert f"<@{CAROL}>" in posted.shown
    assert world.backups_created() == 1


async def test_the_ack_comes_back_while_every_dcs_call_is_still_held(world_factory: WorldFactory) -> None:
    gate = DcsGate()
    world = await world_factory(dcs_gate=gate)

    result = await world.command('redis-prod aof "held"')

    assert result.status == 200
    assert result.reply.error is None
    assert result.message is not None and result.message.text == "Looking up *redis-prod*…"
    assert result.message.visible_to == ALICE
    assert world.dcs.calls == [], "no DCS call had been answered when the ack went out"
    await gate.held("GET /v2/")
    assert world.slack.ephemeral_for(ALICE) == [result.message], "the card waits for DCS, the ack did not"

    gate.open()
    card = await world.reply_to(ALICE)
    assert card is result.message and card.history[0].text == "Looking up *redis-prod*…"
    assert world.slack.buttons(card), "the card replaced the ack"
    assert fields_of(card)["Remark"] == "held"
    assert world.slack.ephemeral_for(ALICE) == [card]


async def test_usage_errors_are_answered_in_the_ack_without_any_cloud_call(
    world_factory: WorldFactory,
) -> None:
    gate = DcsGate()
    world = await world_factory(dcs_gate=gate)

    result = await world.command("redis-prod zip")

    assert result.status == 200
    body = result.json()
    assert body is not None and "aof or rdb" in str(body["text"])
    assert result.message is not None and result.message.visible_to == ALICE
    assert gate.arrived == [] and world.dcs.calls == []


async def test_the_click_is_answered_while_create_backup_is_still_held(world_factory: WorldFactory) -> None:
    gate = DcsGate()
    world = await world_factory(dcs_gate=gate)
    gate.open()
    card = await world.card('redis-prod aof "held click"')
    gate.close()

    assert await world.click(card, "backup_confirm") == 200

    await gate.held("POST /v2/")
    assert world.dcs.calls_to("create_backup") == []
    assert world.slack.buttons(card) == [], "the card is closed before DCS is asked"
    assert world.slack.channel_messages(OPS) == []
    gate.open()
    posted = await world.channel_message(OPS)
    assert world.dcs.backups_of(world.prod.instance_id)[0].backup_id in posted.shown


async def test_bolt_answers_with_the_listeners_ack_at_once_without_polling_for_it(world: World) -> None:
    # process_before_response: the listener runs inline and its ack is the answer; Bolt's default runner
    # would start it as a task and poll for the ack every 10 ms. The listeners only ack and hand over.
    assert world.bot.bolt.process_before_response

    usage = await world.command("redis-prod zip")
    body = usage.json()
    assert body is not None and "aof or rdb" in str(body["text"])

    plain = await world.command('redis-prod aof "inline"')
    assert plain.status == 200 and plain.json() == {
        "text": "Looking up *redis-prod*…",
        "response_type": "ephemeral",
    }
    assert (await world.reply_to(ALICE)).blocks
