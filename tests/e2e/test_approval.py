"""Rules with ``approval = "peer"``: the requester confirms, then a listed approver (not the requester)
approves or rejects in the channel."""

from __future__ import annotations

import asyncio

from bot.core.rules.backup_request import RequestState
from bot.standins.slack.timeline import Message
from tests.e2e.conftest import ALICE, BOB, CAROL, LEAD, OPS, World, WorldFactory

APPROVAL_TTL = 0.3


async def approval_request(world: World, text: str = 'redis-staging rdb "four eyes"') -> Message:
    card = await world.card(text, user=BOB)
    assert "must approve" in str(card.blocks)
    await world.click(card, "backup_confirm", user=BOB)
    message = await world.channel_message(OPS)

    assert world.slack.buttons(card) == [], "the requester's card is replaced"
    assert "Waiting for approval" in card.shown
    assert {b.action_id for b in world.slack.buttons(message)} == {"backup_approve", "backup_reject"}
    assert f"<@{BOB}>" in message.shown and "redis-staging" in message.shown
    assert world.backups_created() == 0
    return message


async def test_an_approver_approves_and_the_outcome_names_both_people(world: World) -> None:
    message = await approval_request(world)

    assert await world.click(message, "backup_approve", user=LEAD) == 200
    started = await world.channel_message(OPS, 2)

    assert world.slack.buttons(message) == [], "the approval request loses its buttons"
    assert f"Approved by <@{LEAD}>" in message.shown
    assert f"<@{BOB}>" in started.shown and f"<@{LEAD}>" in started.shown
    [backup] = world.dcs.backups_of(world.staging.instance_id)
    assert (backup.backup_format, backup.remark) == ("rdb", "four eyes")
    assert backup.backup_id in started.shown
    assert world.backups_created() == 1
    [request] = await world.requests()
    assert (request.confirmed_by, request.approved_by) == (BOB, LEAD)
    # Both cards end in the backup's start: the requester's through its response_url, the approval request
    # in the channel by chat.update.
    [card] = world.slack.ephemeral_for(BOB)
    await world.slack.wait_until(
        lambda: "Started" in card.shown and "Started" in message.shown, what="both cards in their final state"
    )
    assert f"Approved by <@{LEAD}>" in card.shown and backup.backup_id in card.shown
    assert [u.params["ts"] for u in world.slack.calls("chat.update")] == [message.ts]


async def test_the_requester_cannot_approve_their_own_request(world: World) -> None:
    message = await approval_request(world)

    await world.click(message, "backup_approve", user=BOB)
    refusal = await world.reply_to(BOB, 2)

    assert refusal.visible_to == BOB
    assert "cannot approve your own request" in refusal.shown
    assert world.slack.buttons(message)
    assert world.backups_created() == 0


async def test_someone_who_is_not_an_approver_is_refused(world: World) -> None:
    message = await approval_request(world)

    for outsider in (ALICE, CAROL):
        await world.click(message, "backup_approve", user=outsider)
        refusal = await world.reply_to(outsider)
        assert "Only the approvers of rule 'staging-four-eyes'" in refusal.shown
    await world.click(message, "backup_reject", user=ALICE)
    await world.reply_to(ALICE, 2)

    assert world.slack.buttons(message)
    assert world.backups_created() == 0
    [request] = await world.requests()
    assert request.state == RequestState.AWAITING_APPROVAL


async def test_a_member_of_an_approver_group_may_approve(world: World) -> None:
    world.slack.set_usergroup("SLEADS1", [CAROL])
    message = await approval_request(world)

    await world.click(message, "backup_approve", user=CAROL)
    started = await world.channel_message(OPS, 2)

    assert f"<@{CAROL}>" in started.shown
    assert world.backups_created() == 1


async def test_a_rejection_creates_nothing_and_later_clicks_say_so(world: World) -> None:
    message = await approval_request(world)
    late_approval, _ = world.slack.build_click(user_id=LEAD, message=message, action_id="backup_approve")

    await world.click(message, "backup_reject", user=LEAD)
    await world.slack.wait_until(lambda: bool(message.history), what="approval request replaced")

    assert f"Rejected by <@{LEAD}>" in message.shown and f"<@{BOB}>" in message.shown
    assert world.slack.buttons(message) == []
    [request] = await world.requests()
    assert request.state == RequestState.REJECTED
    # The requester's card no longer says it waits for approval.
    [card] = world.slack.ephemeral_for(BOB)
    await world.slack.wait_until(lambda: "Rejected by" in card.shown, what="the requester's card")
    assert "was not started" in card.shown and world.slack.buttons(card) == []

    await world.slack.send_interactive(world.bot_url, late_approval)
    late = await world.reply_to(LEAD)
    assert "already rejected" in late.shown
    assert world.backups_created() == 0
    assert len(world.slack.channel_messages(OPS)) == 1


async def test_concurrent_approvals_start_one_backup(world: World) -> None:
    world.slack.set_usergroup("SLEADS1", [CAROL])
    message = await approval_request(world)
    clicks = [
        world.slack.build_click(user_id=approver, message=message, action_id="backup_approve")[0]
        for approver in (LEAD, CAROL, LEAD)
    ]

    await asyncio.gather(*(world.slack.send_interactive(world.bot_url, c) for c in clicks))
    await world.channel_message(OPS, 2)
    await world.slack.wait_until(
        lambda: len(world.slack.ephemeral_for(LEAD) + world.slack.ephemeral_for(CAROL)) >= 2,
        what="refusals of the losing clicks",
    )

    refusals = [m.shown for m in world.slack.ephemeral_for(LEAD) + world.slack.ephemeral_for(CAROL)]
    assert refusals == ["This backup request was already approved; it runs only once."] * 2
    assert world.backups_created() == 1
    assert len(world.slack.channel_messages(OPS)) == 2


async def test_concurrent_confirmations_ask_for_approval_once(world: World) -> None:
    card = await world.card("redis-staging rdb", user=BOB)
    clicks = [
        world.slack.build_click(user_id=BOB, message=card, action_id="backup_confirm")[0] for _ in range(3)
    ]

    await asyncio.gather(*(world.slack.send_interactive(world.bot_url, c) for c in clicks))
    await world.channel_message(OPS)
    await world.reply_to(BOB, 3)

    assert len(world.slack.channel_messages(OPS)) == 1
    refusals = [m.shown for m in world.slack.ephemeral_for(BOB)[1:]]
    assert refusals == ["This backup request was already confirmed and is waiting for approval."] * 2
    assert world.backups_created() == 0


async def test_an_approval_request_expires(world_factory: WorldFactory) -> None:
    world = await world_factory(bot_approval_ttl=APPROVAL_TTL)
    message = await approval_request(world)
    # The approver's Slack still shows the button when it is pressed: the expiry sweep may already have
    # taken it off the message by then, and the late click must change nothing either way.
    click, _ = world.slack.build_click(user_id=LEAD, message=message, action_id="backup_approve")
    # The approval window opened before the request was posted, so this is past its end.
    await asyncio.sleep(APPROVAL_TTL)

    await world.slack.send_interactive(world.bot_url, click)
    await world.slack.wait_until(lambda: bool(message.history), what="approval request replaced")

    assert "expired" in message.shown and "Nothing was backed up" in message.shown
    assert world.slack.buttons(message) == []
    assert world.backups_created() == 0
    [request] = await world.requests()
    assert request.state == RequestState.EXPIRED


async def test_approver_groups_fail_closed_when_slack_cannot_list_them(world: World) -> None:
    world.slack.set_usergroup("SLEADS1", [CAROL])
    world.slack.fail_usergroups("plan_upgrade_required")
    message = await approval_request(world)

    await world.click(message, "backup_approve", user=CAROL)
    refusal = await world.reply_to(CAROL)
    assert "Only the approvers" in refusal.shown and "plan_upgrade_required" in refusal.shown
    assert world.backups_created() == 0

    await world.click(message, "backup_approve", user=LEAD)
    await world.channel_message(OPS, 2)
    assert world.backups_created() == 1
