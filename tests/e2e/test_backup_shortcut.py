"""The global shortcut ``backup_shortcut`` (issue 12 item 1) opens the backup form, end to end over HTTP
signed as Slack signs: a shortcut comes from no channel, so its trigger id opens the form that asks for one
(as the Home tab's ``backup_new`` does); the submission with a channel gives the card there, visible only to
the person, and its confirm starts the backup."""

from __future__ import annotations

import json

from tests.e2e.conftest import ALICE, OPS, VIEWER, World
from tests.e2e.test_home_backup_form import option

SHORTCUT = "backup_shortcut"


async def test_the_shortcut_opens_the_form_whose_card_backs_up_in_the_channel_chosen(world: World) -> None:
    answer = await world.slack.send_shortcut(world.bot_url, user_id=ALICE, callback_id=SHORTCUT)
    modal = await world.slack.wait_for_modal(ALICE)

    assert answer.status == 200
    [opened] = world.slack.calls("views.open")
    assert opened.reply.body["ok"] is True, "the shortcut's trigger id opens the modal"
    assert modal.callback_id == "backup_form" and json.loads(modal.private_metadata)["channel"] is None
    inputs = [b["block_id"] for b in modal.blocks if b["type"] == "input"]
    assert inputs == ["channel", "instance", "format", "remark", "dry_run"]

    prod = await option(world, modal, "redis-prod")
    submitted = await world.slack.submit_view(
        world.bot_url,
        user_id=ALICE,
        view=modal,
        entered={"channel": OPS, "instance": prod, "format": "aof", "remark": "from the shortcut"},
    )
    card = await world.reply_to(ALICE)

    assert submitted.closed and submitted.errors == {}
    assert (card.channel, card.source, card.visible_to) == (OPS, "chat.postEphemeral", ALICE)
    assert "AOF" in card.shown and "from the shortcut" in card.shown
    assert world.backups_created() == 0
    await world.click(card, "backup_confirm")
    posted = await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert (backup.backup_format, backup.remark) == ("aof", "from the shortcut")
    assert backup.backup_id in posted.shown


async def test_a_shortcut_the_bot_does_not_know_opens_nothing(world: World) -> None:
    answer = await world.slack.send_shortcut(world.bot_url, user_id=VIEWER, callback_id="not_ours")

    assert answer.status in (200, 404)
    assert world.slack.calls("views.open") == [] and world.slack.views.opened_for(VIEWER) == []
