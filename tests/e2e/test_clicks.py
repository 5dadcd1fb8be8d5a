"""Button clicks: only the requester, only once, only in time; forged ids change nothing."""

from __future__ import annotations

import asyncio

from bot.core.rules.backup_request import RequestState
from bot.standins.slack.timeline import Message
from tests.e2e.conftest import ADMIN, ALICE, BOB, DEFAULT_POLICY, OPS, World, WorldFactory, earlier_versions

CONFIRM_TTL = 0.3


def texts(messages: list[Message]) -> list[str]:
    return [m.shown for m in messages]


async def test_concurrent_clicks_on_one_card_create_exactly_one_backup(world: World) -> None:
    card = await world.card('redis-prod aof "clicked five times"')
    clicks = [
        world.slack.build_click(user_id=ALICE, message=card, action_id="backup_confirm")[0] for _ in range(5)
    ]

    replies = await asyncio.gather(*(world.slack.send_interactive(world.bot_url, c) for c in clicks))

    assert [r.status for r in replies] == [200] * 5
    posted = await world.channel_message(OPS)
    # The card itself, replaced by the winner, plus one refusal for each of the four other clicks.
    await world.reply_to(ALICE, 5)
    assert world.backups_created() == 1
    assert len(world.dcs.backups_of(world.prod.instance_id)) == 1
    assert len(world.slack.channel_messages(OPS)) == 1
    assert world.dcs.backups_of(world.prod.instance_id)[0].backup_id in posted.shown
    refusals = world.slack.ephemeral_for(ALICE)[1:]
    assert all("already confirmed" in text for text in texts(refusals))
    assert world.slack.buttons(card) == []


async def test_cancel_replaces_the_card_and_creates_nothing(world: World) -> None:
    card = await world.card("redis-prod rdb")
    # Built while the buttons still show, sent after the cancel: a click from a stale client.
    late_confirm, _ = world.slack.build_click(user_id=ALICE, message=card, action_id="backup_confirm")

    assert await world.click(card, "backup_cancel") == 200
    await world.slack.wait_until(lambda: bool(earlier_versions(card)), what="card replaced")

    assert "Cancelled by <@UALICE1>" in card.shown
    assert world.slack.buttons(card) == []
    assert world.backups_created() == 0
    assert world.slack.channel_messages(OPS) == []
    [request] = await world.requests()
    assert request.state == RequestState.CANCELLED

    await world.slack.send_interactive(world.bot_url, late_confirm)
    late = await world.reply_to(ALICE, 2)
    assert "already cancelled" in late.shown
    assert world.backups_created() == 0


async def test_someone_elses_click_is_refused_and_the_requester_can_still_confirm(world: World) -> None:
    card = await world.card('redis-prod rdb "alice only"')

    for intruder in (BOB, ADMIN):
        status = await world.slack.click(
            world.bot_url, user_id=intruder, message=card, action_id="backup_confirm", force=True
        )
        assert status == 200
        refusal = await world.reply_to(intruder)
        assert refusal.visible_to == intruder
        assert f"Only <@{ALICE}> can confirm" in refusal.shown
    await world.slack.click(world.bot_url, user_id=BOB, message=card, action_id="backup_cancel", force=True)
    await world.reply_to(BOB, 2)

    assert world.slack.buttons(card), "Alice's card is untouched"
    assert earlier_versions(card) == []
    assert world.backups_created() == 0
    assert world.slack.channel_messages(OPS) == []
    [request] = await world.requests()
    assert request.state == RequestState.PENDING

    await world.click(card, "backup_confirm")
    posted = await world.channel_message(OPS)
    assert f"<@{ALICE}>" in posted.shown
    assert world.backups_created() == 1


async def test_an_expired_confirmation_creates_nothing(world_factory: WorldFactory) -> None:
    world = await world_factory(bot_confirm_ttl=CONFIRM_TTL)
    card = await world.card("redis-prod rdb")
    # The request was created before the card arrived, so this is past its expiry.
    await asyncio.sleep(CONFIRM_TTL)

    await world.click(card, "backup_confirm")
    await world.slack.wait_until(lambda: bool(earlier_versions(card)), what="card replaced")

    assert "expired" in card.shown and "Nothing was backed up" in card.shown
    assert [b.action_id for b in world.slack.buttons(card)] == ["backup_retry"], "only Start over"
    assert world.backups_created() == 0
    assert world.slack.channel_messages(OPS) == []
    [request] = await world.requests()
    assert request.state == RequestState.EXPIRED


async def test_a_click_with_an_unknown_request_id_is_refused_politely(world: World) -> None:
    card = await world.card("redis-prod rdb")

    for action in ("backup_confirm", "backup_cancel", "backup_approve", "backup_reject"):
        payload, _ = world.slack.build_click(user_id=ALICE, message=card, action_id="backup_confirm")
        forged = payload | {"actions": [payload["actions"][0] | {"action_id": action, "value": "forged-id"}]}
        assert (await world.slack.send_interactive(world.bot_url, forged)).status == 200
    await world.reply_to(ALICE, 5)

    refusals = world.slack.ephemeral_for(ALICE)[1:]
    assert all("unknown to the bot" in text and "Nothing was changed" in text for text in texts(refusals))
    assert world.slack.buttons(card)
    assert world.backups_created() == 0
    [request] = await world.requests()
    assert request.state == RequestState.PENDING


async def test_a_confirmation_is_authorized_again_at_click_time(world: World) -> None:
    card = await world.card("redis-prod rdb")
    policy = world.bot.settings.bot_policy
    policy.write_text(DEFAULT_POLICY.replace(f'users = ["{ALICE}"]', "users = []"))
    assert world.bot.policy.reload()

    await world.click(card, "backup_confirm")
    await world.slack.wait_until(lambda: bool(earlier_versions(card)), what="card replaced")

    assert "you may no longer back up" in card.shown
    assert world.slack.buttons(card) == []
    assert world.backups_created() == 0
    assert world.slack.channel_messages(OPS) == []
    [request] = await world.requests()
    assert request.state == RequestState.CANCELLED
