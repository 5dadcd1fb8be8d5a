"""``[[watch]]``: the bot as the notification channel of the backup estate. Automatic (and other) backups
of watched instances that end are posted once to the watch channel; nothing else is."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.standins.dcs.control import EmulatedBackup, ManualClock
from bot.standins.dcs.records import BackupOutcome
from tests.e2e.conftest import (
    ALERTS,
    ALICE,
    DEFAULT_POLICY,
    OPS,
    DcsGate,
    StandInsFactory,
    World,
    WorldFactory,
)


def watching(*channels: str, events: str = '["failed"]') -> str:
    watches = "".join(
        f"""
[[watch]]
instances = ["redis-prod"]
channel = "{channel}"
events = {events}
"""
        for channel in channels
    )
    return DEFAULT_POLICY + watches


async def seen_ended(world: World, record: EmulatedBackup) -> None:
    """Returns once the bot has acted on a page that showed ``record`` final: two list calls answered after
    it ended, since a cycle acts on its page before the next cycle lists again."""

    def after_the_end() -> int:
        calls = world.dcs.calls_to("list_backups", instance_id=record.instance_id)
        return sum(1 for call in calls if call.at >= record.finished_at)

    await world.dcs.wait_for_calls(lambda: after_the_end() >= 2)


def ending_soon(
    world: World, outcome: BackupOutcome = "succeed", error_code: str | None = None, size: int | None = None
) -> EmulatedBackup:
    """An automatic backup of redis-prod that started a minute ago and ends a moment from now."""
    return world.dcs.add_backup(
        world.prod.instance_id,
        backup_type="auto",
        outcome=outcome,
        error_code=error_code,
        size=size,
        created_at=world.dcs.now() - 60,
        waiting_seconds=0,
        backuping_seconds=60.1,
    )


async def test_a_failed_automatic_backup_is_posted_once_to_the_watch_channel(
    world_factory: WorldFactory,
) -> None:
    world = await world_factory(watching(ALERTS))
    failed = ending_soon(world, outcome="failed", error_code="dcs.08.0008")
    unwatched = world.dcs.add_backup(world.staging.instance_id, backup_type="auto", outcome="failed")

    notice = await world.channel_message(ALERTS)
    await world.more_polls(world.prod, 4)

    assert notice.shown == (
        ":x: Automatic backup of *redis-prod* failed in 1 min: `dcs.08.0008` — "
        "the scheduled backup did not run because the instance was busy with another task.\n"
        f"backup_id `{failed.backup_id}`"
    )
    assert notice.text == "Automatic backup of redis-prod failed."
    assert world.slack.channel_messages(ALERTS) == [notice]
    assert unwatched.backup_id not in world.sent_by_bot()
    assert world.polls(world.staging) == 0
    assert world.slack.channel_messages(OPS) == []


@pytest.mark.parametrize(
    ("events", "posted"), [('["failed"]', False), ('["failed", "succeed"]', True)], ids=["default", "succeed"]
)
async def test_a_watched_success_is_posted_only_when_the_watch_asks_for_it(
    world_factory: WorldFactory, events: str, posted: bool
) -> None:
    world = await world_factory(watching(ALERTS, events=events))
    succeeded = ending_soon(world, size=3 * 1024**2)

    await seen_ended(world, succeeded)

    expected = (
        ":white_check_mark: Automatic backup of *redis-prod* succeeded in 1 min: 3.0 MiB.\n"
        f"backup_id `{succeeded.backup_id}`"
    )
    assert [m.shown for m in world.slack.channel_messages(ALERTS)] == ([expected] if posted else [])


async def test_backups_that_ended_before_the_watch_began_are_not_posted(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory
) -> None:
    stand_ins = await stand_ins_factory()
    day_ago = stand_ins.dcs.now() - 24 * 3600
    outcomes: list[BackupOutcome] = ["failed", "succeed", "failed"]
    for outcome in outcomes:
        stand_ins.dcs.add_backup(stand_ins.prod.instance_id, outcome=outcome, created_at=day_ago)
        day_ago += 3600
    world = await world_factory(watching(ALERTS, events='["failed", "succeed"]'), stand_ins=stand_ins)

    await world.more_polls(world.prod, 3)
    assert world.slack.channel_messages(ALERTS) == []

    fresh = ending_soon(world, outcome="failed")
    notice = await world.channel_message(ALERTS)
    await world.more_polls(world.prod, 3)
    assert fresh.backup_id in notice.shown
    assert world.slack.channel_messages(ALERTS) == [notice]


async def test_after_a_restart_nothing_is_posted_again_and_what_ended_meanwhile_is_posted_once(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory
) -> None:
    stand_ins = await stand_ins_factory()
    policy = watching(ALERTS)
    first_bot = await world_factory(policy, stand_ins=stand_ins)
    before = ending_soon(first_bot, outcome="failed")
    await first_bot.channel_message(ALERTS)
    await first_bot.stop()

    # Ended while no bot was running, after the watch had begun.
    meanwhile = stand_ins.dcs.add_backup(
        stand_ins.prod.instance_id,
        outcome="failed",
        created_at=stand_ins.dcs.now() - 0.002,
        waiting_seconds=0,
        backuping_seconds=0.001,
    )
    second_bot = await world_factory(policy, stand_ins=stand_ins)
    await second_bot.channel_message(ALERTS, count=2)
    await second_bot.more_polls(second_bot.prod, 4)

    posted = second_bot.slack.channel_messages(ALERTS)
    assert len(posted) == 2
    assert before.backup_id in posted[0].shown and meanwhile.backup_id in posted[1].shown


async def test_a_backup_started_through_the_bot_is_not_posted_twice_in_its_own_channel(
    world_factory: WorldFactory,
) -> None:
    world = await world_factory(watching(OPS, ALERTS, events='["failed", "succeed"]'))
    card = await world.card('redis-prod aof "watched and followed"')
    await world.click(card, "backup_confirm")
    started = await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)

    [outcome] = await world.thread_replies(started.ts)
    elsewhere = await world.channel_message(ALERTS)
    await world.more_polls(world.prod, 4)

    assert "succeeded" in outcome.shown
    assert world.slack.channel_messages(OPS) == [started]
    assert len(world.slack.thread(OPS, started.ts)) == 1
    assert world.slack.channel_messages(ALERTS) == [elsewhere]
    assert elsewhere.shown.startswith(
        f":white_check_mark: Manual backup of *redis-prod* (started through the bot by <@{ALICE}>) succeeded"
    )
    assert backup.backup_id in elsewhere.shown


async def test_the_end_of_a_backup_the_bot_gave_up_following_is_posted_by_the_watch_in_its_channel(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory
) -> None:
    clock = ManualClock()
    stand_ins = await stand_ins_factory(dcs_clock=clock)
    stand_ins.dcs.waiting_seconds, stand_ins.dcs.backuping_seconds = 5.0, 60.0
    world = await world_factory(
        watching(OPS, events='["failed", "succeed"]'), stand_ins=stand_ins, follow_for=timedelta(seconds=0.3)
    )
    card = await world.card('redis-prod aof "slow one"')
    await world.click(card, "backup_confirm")
    started = await world.channel_message(OPS)
    [gave_up] = await world.thread_replies(started.ts)
    assert "I stopped following it" in gave_up.shown

    clock.advance(65)
    ended = await world.channel_message(OPS, count=2)
    await world.more_polls(world.prod, 4)

    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert ended.shown.startswith(
        f":white_check_mark: Manual backup of *redis-prod* (started through the bot by <@{ALICE}>) succeeded"
    )
    assert backup.backup_id in ended.shown
    assert world.slack.channel_messages(OPS) == [started, ended]
    assert world.slack.thread(OPS, started.ts) == [gave_up]


async def test_the_watch_waits_as_long_as_retry_after_asks_before_listing_instances_again(
    world_factory: WorldFactory,
) -> None:
    gate = DcsGate()
    world = await world_factory(watching(ALERTS), dcs_gate=gate)
    world.dcs.inject_fault(endpoint="list_instances", status=429, retry_after=0.5)
    gate.open()

    # Ends after the watch could begin, which is once the instances are known.
    failed = world.dcs.add_backup(world.prod.instance_id, outcome="failed", backuping_seconds=1)
    notice = await world.channel_message(ALERTS)

    assert failed.backup_id in notice.shown
    throttled, after, *_ = world.dcs.calls_to("list_instances")
    assert (throttled.status, after.status) == (429, 200)
    assert after.at - throttled.at >= 0.5
