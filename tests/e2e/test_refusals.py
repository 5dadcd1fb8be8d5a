"""Who may not back up what, where: every refusal is ephemeral, changes nothing, and says why."""

from __future__ import annotations

from bot.standins.slack.timeline import Message
from tests.e2e.conftest import ALICE, CAROL, OPS, PRIVATE, RANDOM, VIEWER, World

STRANGER = "USTRANGER1"


async def refusal(world: World, text: str, *, user: str, channel: str = OPS) -> Message:
    result = await world.command(text, user=user, channel=channel)
    assert result.status == 200
    reply = await world.reply_to(user)
    assert reply.is_ephemeral and reply.visible_to == user
    assert world.slack.buttons(reply) == []
    return reply


async def assert_nothing_changed(world: World) -> None:
    assert world.backups_created() == 0
    assert world.slack.channel_messages(OPS) == []
    assert world.slack.channel_messages(RANDOM) == []
    assert await world.requests() == []


async def test_a_person_without_any_rule_is_refused_before_any_cloud_call(world: World) -> None:
    reply = await refusal(world, 'redis-prod aof "let me in"', user=STRANGER)

    assert ":no_entry:" in reply.shown and "No rule" in reply.shown
    assert world.dcs.calls == []
    await assert_nothing_changed(world)


async def test_an_action_the_rules_do_not_grant_is_refused(world: World) -> None:
    reply = await refusal(world, "redis-prod", user=VIEWER)

    assert "'viewers'" in reply.shown and "back up" in reply.shown
    assert world.dcs.calls == []
    await assert_nothing_changed(world)


async def test_a_channel_outside_the_rule_is_refused_and_names_the_allowed_channels(world: World) -> None:
    reply = await refusal(world, "redis-prod", user=ALICE, channel=RANDOM)

    assert f"<#{OPS}>" in reply.shown and f"<#{PRIVATE}>" in reply.shown
    assert "not in this channel" in reply.shown
    assert world.dcs.calls == []
    await assert_nothing_changed(world)


async def test_an_instance_outside_the_rule_globs_is_refused(world: World) -> None:
    other = world.dcs.add_instance("sessions-db", cache_mode="ha")

    reply = await refusal(world, "sessions-db rdb", user=ALICE)

    assert "sessions-db" in reply.shown and other.instance_id in reply.shown
    assert "redis-*" in reply.shown and "cache-*" in reply.shown
    await assert_nothing_changed(world)


async def test_unreadable_group_membership_fails_closed_and_says_why(world: World) -> None:
    world.slack.fail_usergroups("plan_upgrade_required")

    reply = await refusal(world, "redis-prod rdb", user=CAROL)

    assert "plan_upgrade_required" in reply.shown
    assert "group" in reply.shown
    assert world.dcs.calls == []
    await assert_nothing_changed(world)


async def test_unreadable_group_membership_does_not_take_away_direct_rules(world: World) -> None:
    world.slack.fail_usergroups("plan_upgrade_required")

    card = await world.card("redis-prod rdb", user=ALICE)

    assert world.slack.buttons(card)


async def test_help_lists_only_what_the_person_may_do(world: World) -> None:
    await world.command("help", user=VIEWER)
    reply = await world.reply_to(VIEWER)

    assert reply.is_ephemeral
    text = str(reply.blocks)
    assert "viewers" in text and "sre-prod" not in text
    assert world.dcs.calls == []
