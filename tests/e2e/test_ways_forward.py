"""Issue 12, a way forward from every dead end, over HTTP: ``backup_retry`` after DCS refused (a fresh card,
the policy decided again for whoever clicks), ``backup_run`` under a dry run, ``backup_pick`` on "did you
mean", and "Start over" on an expired card. A button carries an opaque id and grants nothing by itself."""

from __future__ import annotations

import asyncio

from bot.core.rules.backup_request import RequestState
from bot.standins.slack.timeline import Message
from tests.e2e.conftest import ALICE, CAROL, OPS, VIEWER, World, WorldFactory


async def refused_backup(world: World) -> Message:
    """A backup DCS refuses (one is running already); its channel notice."""
    running = world.dcs.add_backup(world.prod.instance_id, backup_type="auto", backuping_seconds=3600)
    card = await world.card('redis-prod aof "try me"')
    await world.click(card, "backup_confirm")
    notice = await world.channel_message(OPS)
    await world.slack.wait_until(lambda: "Not started" in card.shown, what="the card's final state")
    assert "`DCS.4096`" in card.shown and world.slack.buttons(card)[0].action_id == "backup_retry"
    world.dcs.set_backup_status(running.backup_id, "succeed")
    return notice


async def test_retry_after_a_refusal_gives_a_fresh_card_decided_again_for_the_clicker(world: World) -> None:
    notice = await refused_backup(world)
    [retry] = world.slack.buttons(notice)
    [refused] = await world.requests()
    assert (retry.action_id, retry.value) == ("backup_retry", refused.request_id)

    # Carol may back up through her user group; the viewer may only list.
    await world.click(notice, "backup_retry", user=CAROL)
    fresh = await world.reply_to(CAROL)
    await world.click(notice, "backup_retry", user=VIEWER)
    no = await world.reply_to(VIEWER)

    assert fresh.visible_to == CAROL and {b.action_id for b in world.slack.buttons(fresh)} == {
        "backup_confirm",
        "backup_cancel",
    }
    assert "redis-prod" in fresh.shown and "try me" in fresh.shown and "AOF" in fresh.shown
    assert no.visible_to == VIEWER and "You may not back up" in no.shown and not world.slack.buttons(no)
    assert world.slack.buttons(notice), "the channel notice is left as it is for everyone"
    # Only the clicker allowed got a request of their own, and nothing ran yet.
    pending = [r for r in await world.requests() if r.state == RequestState.PENDING]
    assert [r.requester_id for r in pending] == [CAROL]
    assert world.backups_created() == 1

    await world.click(fresh, "backup_confirm", user=CAROL)
    started = await world.channel_message(OPS, 2)
    assert f"<@{CAROL}> started an AOF backup" in started.shown
    assert world.backups_created() == 2


async def test_run_after_a_dry_run_gives_the_real_card_in_its_place(world: World) -> None:
    await world.command('redis-prod rdb "for real" --dry-run')
    dry_run = await world.reply_to(ALICE)
    assert [b.action_id for b in world.slack.buttons(dry_run)] == ["backup_run"]

    versions = len(dry_run.history)  # the dry run replaced the "Looking up" ack
    await world.click(dry_run, "backup_run")
    await world.slack.wait_until(lambda: len(dry_run.history) > versions, what="the card")

    assert {b.action_id for b in world.slack.buttons(dry_run)} == {"backup_confirm", "backup_cancel"}
    assert "Back up *redis-prod*?" in dry_run.shown and "for real" in dry_run.shown
    assert world.backups_created() == 0
    await world.click(dry_run, "backup_confirm")
    await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert (backup.backup_format, backup.remark) == ("rdb", "for real")


async def test_pick_on_a_suggestion_gives_the_card_for_that_instance(world: World) -> None:
    await world.command("redis-prd")
    suggestions = await world.reply_to(ALICE)
    [pick] = world.slack.buttons(suggestions)
    assert (pick.action_id, pick.label, pick.value) == ("backup_pick", "redis-prod", world.prod.instance_id)
    assert suggestions.text == "I could not find redis-prd."

    versions = len(suggestions.history)  # the suggestions replaced the "Looking up" ack
    await world.click(suggestions, "backup_pick")
    await world.slack.wait_until(
        lambda: len(suggestions.history) > versions, what="the card in place of the suggestions"
    )

    assert {b.action_id for b in world.slack.buttons(suggestions)} == {"backup_confirm", "backup_cancel"}
    assert "Back up *redis-prod*?" in suggestions.shown


async def test_pick_keeps_the_format_and_remark_typed(world: World) -> None:
    await world.command('redis-prd aof "before the migration"')
    suggestions = await world.reply_to(ALICE)
    [pick] = world.slack.buttons(suggestions)
    assert pick.value == world.prod.instance_id, "the button names the instance, nothing more"

    versions = len(suggestions.history)
    await world.click(suggestions, "backup_pick")
    await world.slack.wait_until(lambda: len(suggestions.history) > versions, what="the card")

    assert "Back up *redis-prod*?" in suggestions.shown
    assert "AOF" in suggestions.shown and "before the migration" in suggestions.shown
    await world.click(suggestions, "backup_confirm")
    await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert (backup.backup_format, backup.remark) == ("aof", "before the migration")


async def test_pick_under_a_dry_run_gives_the_dry_run_of_the_instance_picked(world: World) -> None:
    await world.command('redis-prd aof "only looking" --dry-run')
    suggestions = await world.reply_to(ALICE)

    versions = len(suggestions.history)
    await world.click(suggestions, "backup_pick")
    await world.slack.wait_until(lambda: len(suggestions.history) > versions, what="the dry run")

    assert [b.action_id for b in world.slack.buttons(suggestions)] == ["backup_run"]
    assert "only looking" in suggestions.shown and "aof" in suggestions.shown.lower()
    assert {r.state for r in await world.requests()} == {RequestState.DRY_RUN}
    assert world.backups_created() == 0


async def test_pick_on_list_suggestions_lists_the_instance_picked(world: World) -> None:
    await world.command("list redis-prd")
    suggestions = await world.reply_to(ALICE)

    versions = len(suggestions.history)
    await world.click(suggestions, "backup_pick")
    await world.slack.wait_until(lambda: len(suggestions.history) > versions, what="the list")

    assert "redis-prod" in suggestions.shown and not world.slack.buttons(suggestions)
    assert await world.requests() == []


async def test_a_pick_offered_to_someone_else_is_refused_and_changes_nothing(world: World) -> None:
    await world.command('redis-prd rdb "alice\'s remark"')
    suggestions = await world.reply_to(ALICE)

    # Carol (who may back up redis-prod herself) presses the button of the answer alice was given.
    await world.slack.click(
        world.bot_url, user_id=CAROL, message=suggestions, action_id="backup_pick", force=True
    )
    refusal = await world.reply_to(CAROL)

    assert "not one the bot offered you" in refusal.shown and "alice" not in refusal.shown
    assert not world.slack.buttons(refusal)
    assert [b.action_id for b in world.slack.buttons(suggestions)] == ["backup_pick"], "alice's is left as is"
    assert await world.requests() == [] and world.backups_created() == 0


async def test_a_pick_that_names_no_instance_is_refused_and_changes_nothing(world: World) -> None:
    await world.command("redis-prd")
    suggestions = await world.reply_to(ALICE)

    forged = "redis-prod; drop table"
    await world.slack.click(
        world.bot_url, user_id=ALICE, message=suggestions, action_id="backup_pick", value=forged
    )
    refusal = await world.reply_to(ALICE, 2)

    assert "not one the bot offered" in refusal.shown
    assert await world.requests() == [] and world.backups_created() == 0


async def test_start_over_on_an_expired_card_gives_a_fresh_card(world_factory: WorldFactory) -> None:
    world = await world_factory(bot_confirm_ttl=0.3)
    card = await world.card('redis-prod rdb "again"')
    await asyncio.sleep(0.3)
    await world.click(card, "backup_confirm")
    await world.slack.wait_until(lambda: "expired" in card.shown, what="the card expired")
    [start_over] = world.slack.buttons(card)
    assert (start_over.action_id, start_over.label) == ("backup_retry", "Start over")

    seen = len(world.slack.ephemeral_for(ALICE))
    await world.click(card, "backup_retry")
    await world.slack.wait_until(lambda: len(world.slack.ephemeral_for(ALICE)) > seen, what="a fresh card")
    fresh = world.slack.ephemeral_for(ALICE)[-1]
    assert {b.action_id for b in world.slack.buttons(fresh)} == {"backup_confirm", "backup_cancel"}
    assert "again" in fresh.shown and "RDB" in fresh.shown
