"""The Home tab's ``backup_new`` opens the backup form (INTERFACE §11), end to end over HTTP signed as
Slack signs: the click's trigger id opens the modal (``views.open``); the Home tab is in no channel, so the
form asks for one and its picker lists what the person may back up in some channel; the chosen channel is
decided on submission (a refusal shows on the channel field); the card then reaches the person there with
``chat.postEphemeral``, and its confirm starts the backup."""

from __future__ import annotations

import json

from bot.standins.slack.standin import View
from tests.e2e.conftest import ALICE, OPS, RANDOM, World
from tests.e2e.test_backup_flow import fields_of
from tests.e2e.test_home_tab import home_views


async def form_from_home(world: World, user: str = ALICE) -> View:
    await world.slack.open_home(world.bot_url, user_id=user)
    await home_views(world, user)
    before = len(world.slack.views.opened_for(user))
    assert await world.slack.click_home(world.bot_url, user_id=user, action_id="backup_new") == 200
    return await world.slack.wait_for_modal(user, before + 1)


async def option(world: World, modal: View, typed: str) -> dict[str, object]:
    found = await world.slack.suggest(
        world.bot_url, user_id=ALICE, view=modal, action_id="instance", typed=typed
    )
    assert found.problems == [], found.problems
    [only] = found.options
    return only


async def test_new_backup_on_the_home_tab_opens_the_form_with_a_channel_to_choose(world: World) -> None:
    world.dcs.add_instance("billing-queue", cache_mode="ha")  # no rule of alice's covers it
    modal = await form_from_home(world)

    [opened] = world.slack.calls("views.open")
    assert opened.reply.body["ok"] is True, "the Home-tab click's trigger id opens a modal"
    assert modal.callback_id == "backup_form" and json.loads(modal.private_metadata)["channel"] is None
    inputs = {b["block_id"]: b["element"] for b in modal.blocks if b["type"] == "input"}
    assert list(inputs) == ["channel", "instance", "format", "remark", "dry_run"]
    assert inputs["channel"]["type"] == "conversations_select"
    found = await world.slack.suggest(
        world.bot_url, user_id=ALICE, view=modal, action_id="instance", typed=""
    )
    assert found.labels == ["cache-single", "redis-prod", "redis-staging"], "alice may in #ops"
    assert len(world.dcs.calls_to("list_instances")) == 1, "the Home tab and the picker share one listing"


async def test_the_form_from_the_home_tab_gives_the_card_in_the_chosen_channel(world: World) -> None:
    typed = await world.card("redis-prod rdb")
    typed_fields = fields_of(typed)
    await world.click(typed, "backup_cancel")
    modal = await form_from_home(world)
    prod = await option(world, modal, "redis-prod")
    before = len(world.slack.ephemeral_for(ALICE))

    answer = await world.slack.submit_view(
        world.bot_url, user_id=ALICE, view=modal, entered={"channel": OPS, "instance": prod}
    )
    card = await world.reply_to(ALICE, before + 1)

    assert answer.closed and answer.errors == {}
    assert (card.channel, card.source, card.visible_to) == (OPS, "chat.postEphemeral", ALICE)
    assert fields_of(card) == typed_fields
    assert await world.click(card, "backup_confirm") == 200
    posted = await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert backup.backup_id in posted.shown


async def test_a_channel_the_policy_does_not_allow_is_refused_on_its_field(world: World) -> None:
    modal = await form_from_home(world)
    prod = await option(world, modal, "redis-prod")

    refused = await world.slack.submit_view(
        world.bot_url, user_id=ALICE, view=modal, entered={"channel": RANDOM, "instance": prod}
    )
    missing = await world.slack.submit_view(
        world.bot_url, user_id=ALICE, view=modal, entered={"instance": prod}, force=True
    )

    assert set(refused.errors) == {"channel"} and not refused.closed
    assert set(missing.errors) == {"channel"} and not missing.closed
    assert world.slack.calls("chat.postEphemeral") == [] and world.backups_created() == 0
