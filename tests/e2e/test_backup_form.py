"""Issue 12's backup form over HTTP, signed as Slack signs: ``/dcs-backup`` with no text opens the modal
(``views.open`` with the binding ids), its picker lists only what the person may back up in that channel,
a submission is checked on its fields and otherwise brings up the typed command's card, whose buttons
work as ever."""

from __future__ import annotations

import json
from typing import Any

from bot.core.rules.grammar import REMARK_MAX_CHARS
from bot.standins.slack.standin import View
from tests.e2e.conftest import ALICE, OPS, RANDOM, VIEWER, World
from tests.e2e.test_backup_flow import fields_of


async def open_form(world: World, *, user: str = ALICE, channel: str = OPS) -> View:
    before = len(world.slack.views.opened_for(user))
    result = await world.command("", user=user, channel=channel)
    assert result.status == 200 and result.message is None, "the ack shows nothing; the modal opens"
    return await world.slack.wait_for_modal(user, before + 1)


async def pick(world: World, modal: View, typed: str, *, user: str = ALICE) -> list[str]:
    found = await world.slack.suggest(
        world.bot_url, user_id=user, view=modal, action_id="instance", typed=typed
    )
    assert found.reply.status == 200 and found.problems == [], found.problems
    return found.labels


async def options_of(world: World, modal: View, typed: str) -> list[dict[str, Any]]:
    found = await world.slack.suggest(
        world.bot_url, user_id=ALICE, view=modal, action_id="instance", typed=typed
    )
    return found.options


async def test_no_text_opens_the_form_with_the_binding_ids(world: World) -> None:
    modal = await open_form(world)

    [call] = world.slack.calls("views.open")
    assert call.reply.body["ok"] is True
    assert (modal.type, modal.callback_id) == ("modal", "backup_form")
    inputs = {b["block_id"]: b["element"] for b in modal.blocks if b["type"] == "input"}
    assert {block_id: (e["action_id"], e["type"]) for block_id, e in inputs.items()} == {
        "instance": ("instance", "external_select"),
        "format": ("format", "radio_buttons"),
        "remark": ("remark", "plain_text_input"),
        "dry_run": ("dry_run", "checkboxes"),
    }
    assert [o["value"] for o in inputs["format"]["options"]] == ["aof", "rdb"]
    assert inputs["format"]["initial_option"]["value"] == "rdb", "BOT_DEFAULT_FORMAT is preselected"
    assert inputs["remark"]["max_length"] == REMARK_MAX_CHARS
    optional = {b["block_id"] for b in modal.blocks if b.get("optional")}
    assert optional == {"remark", "dry_run"}
    assert json.loads(modal.private_metadata)["channel"] == OPS
    assert world.dcs.calls == [], "opening the form asks no cloud"


async def test_the_picker_lists_only_what_the_person_may_back_up_in_that_channel(world: World) -> None:
    world.dcs.add_instance("billing-queue", cache_mode="ha")  # no rule of alice's covers it
    modal = await open_form(world)

    assert await pick(world, modal, "") == ["cache-single", "redis-prod", "redis-staging"]
    assert await pick(world, modal, "PROD") == ["redis-prod"]
    assert await pick(world, modal, "billing") == []
    assert len(world.dcs.calls_to("list_instances")) == 1, "keystrokes share one listing"

    elsewhere = await open_form(world, channel=RANDOM)
    assert await pick(world, elsewhere, "") == [], "alice's rule covers other channels only"

    listed = len(world.dcs.calls_to("list_instances"))
    viewer = await open_form(world, user=VIEWER)
    assert await pick(world, viewer, "", user=VIEWER) == []
    assert len(world.dcs.calls_to("list_instances")) == listed, "no right to back up, no cloud call"


async def test_a_remark_longer_than_dcs_takes_is_refused_on_its_field(world: World) -> None:
    modal = await open_form(world)
    [prod] = await options_of(world, modal, "redis-prod")
    # 65 thumbs with a skin tone: 65 characters as a person sees them, 130 code points as DCS counts. A
    # client counting what it shows lets it through; the stand-in's client counts code points, so force.
    remark = "👍🏽" * 65

    answer = await world.slack.submit_view(
        world.bot_url, user_id=ALICE, view=modal, entered={"instance": prod, "remark": remark}, force=True
    )

    assert set(answer.errors) == {"remark"} and "130 characters" in answer.errors["remark"]
    assert not answer.closed and answer.problems == []
    assert world.slack.ephemeral_for(ALICE) == []
    assert world.backups_created() == 0


async def test_an_instance_the_person_may_not_back_up_is_refused_on_its_field(world: World) -> None:
    billing = world.dcs.add_instance("billing-queue", cache_mode="ha")
    modal = await open_form(world)
    await pick(world, modal, "")  # the listing the check looks at
    forged = {"text": {"type": "plain_text", "text": "billing-queue"}, "value": billing.instance_id}

    answer = await world.slack.submit_view(
        world.bot_url, user_id=ALICE, view=modal, entered={"instance": forged}
    )

    assert set(answer.errors) == {"instance"}
    assert "billing-queue is not one of them" in answer.errors["instance"]
    assert not answer.closed
    assert world.slack.ephemeral_for(ALICE) == [] and world.backups_created() == 0


async def test_a_submission_brings_up_the_typed_commands_card_and_confirm_starts_the_backup(
    world: World,
) -> None:
    typed = await world.card('redis-prod aof "from the form"')
    typed_fields = fields_of(typed)
    await world.click(typed, "backup_cancel")
    modal = await open_form(world)
    [prod] = await options_of(world, modal, "redis-prod")

    answer = await world.slack.submit_view(
        world.bot_url,
        user_id=ALICE,
        view=modal,
        entered={"instance": prod, "format": "aof", "remark": "from the form"},
    )
    card = await world.reply_to(ALICE, 2)

    assert answer.closed and answer.errors == {}
    assert card.is_ephemeral and card.channel == OPS and card.source == "response_url"
    assert fields_of(card) == typed_fields
    assert {b.action_id for b in world.slack.buttons(card)} == {"backup_confirm", "backup_cancel"}

    assert await world.click(card, "backup_confirm") == 200
    posted = await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert (backup.backup_format, backup.remark) == ("aof", "from the form")
    assert backup.backup_id in posted.shown


async def test_a_dry_run_from_the_form_shows_the_call_and_starts_nothing(world: World) -> None:
    modal = await open_form(world)
    [staging] = await options_of(world, modal, "staging")

    await world.slack.submit_view(
        world.bot_url, user_id=ALICE, view=modal, entered={"instance": staging, "dry_run": True}
    )
    reply = await world.reply_to(ALICE)

    assert "POST" in json.dumps(reply.blocks) and world.prod.instance_id not in json.dumps(reply.blocks)
    assert {b.action_id for b in world.slack.buttons(reply)} <= {"backup_run"}
    assert world.backups_created() == 0


async def test_an_estate_of_500_instances_still_gives_a_valid_picker(world: World) -> None:
    for number in range(500):
        world.dcs.add_instance(f"redis-shard-{number:03d}-{'x' * 40}", cache_mode="cluster")
    modal = await open_form(world)

    found = await world.slack.suggest(
        world.bot_url, user_id=ALICE, view=modal, action_id="instance", typed=""
    )
    narrowed = await pick(world, modal, "shard-42")

    assert found.problems == [] and len(found.options) == 100
    assert all(len(label) <= 75 for label in found.labels)
    assert narrowed == [f"redis-shard-{n}-{'x' * 40}" for n in range(420, 430)]


async def test_the_form_as_the_stand_in_renders_it(world: World) -> None:
    modal = await open_form(world)

    assert world.slack.render_view(modal) == (
        "[ Back up a DCS instance ]\n"
        "Instance: [Type part of its name v]\n"
        "    Only the instances you may back up in this channel are listed.\n"
        "Format: ( ) AOF: every write since the last rewrite (Redis 4.0 and later)  "
        "(•) RDB: a point-in-time snapshot\n"
        "Remark (optional): [e.g. before the migration___] (at most 128 characters)\n"
        "    Stored with the backup; at most 128 characters.\n"
        "Dry run (optional): [ ] Only show what would be done\n"
        "[Cancel] [Continue]\n"
    )
