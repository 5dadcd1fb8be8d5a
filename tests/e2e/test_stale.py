"""``stale_after_hours``: one alert when a watched instance has no recent successful backup, one notice
when it has again, and neither repeated on later cycles or after a restart."""

from __future__ import annotations

from tests.e2e.conftest import ALERTS, DEFAULT_POLICY, StandInsFactory, WorldFactory


def stale_watch(hours: float) -> str:
    return (
        DEFAULT_POLICY
        + f"""
[[watch]]
instances = ["redis-prod"]
channel = "{ALERTS}"
stale_after_hours = {hours}
"""
    )


async def test_a_stale_instance_is_alerted_once_across_restarts_then_its_recovery_once(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory
) -> None:
    stand_ins = await stand_ins_factory()
    prod = stand_ins.prod
    two_hours_ago = stand_ins.dcs.now() - 2 * 3600
    stand_ins.dcs.add_backup(prod.instance_id, created_at=two_hours_ago)
    stand_ins.dcs.add_backup(prod.instance_id, outcome="failed", created_at=two_hours_ago + 1800)
    policy = stale_watch(1)

    first_bot = await world_factory(policy, stand_ins=stand_ins)
    alert = await first_bot.channel_message(ALERTS)
    await first_bot.more_polls(prod, 4)
    assert first_bot.slack.channel_messages(ALERTS) == [alert]
    assert alert.shown.startswith(
        ":rotating_light: *redis-prod* has had no successful backup in the last 1 h "
        "(the last one ended <!date^"
    )
    assert f"Instance ID `{prod.instance_id}`" in alert.shown
    assert alert.text == "redis-prod has no fresh successful backup."
    await first_bot.stop()

    second_bot = await world_factory(policy, stand_ins=stand_ins)
    await second_bot.more_polls(prod, 4)
    assert second_bot.slack.channel_messages(ALERTS) == [alert]

    stand_ins.dcs.add_backup(prod.instance_id)
    recovered = await second_bot.channel_message(ALERTS, count=2)
    await second_bot.more_polls(prod, 4)

    assert recovered.shown.startswith(":white_check_mark: *redis-prod* has a fresh successful backup again")
    assert recovered.text == "redis-prod has a fresh successful backup again."
    assert second_bot.slack.channel_messages(ALERTS) == [alert, recovered]


async def test_an_instance_goes_stale_once_its_last_success_is_older_than_the_window(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory
) -> None:
    stand_ins = await stand_ins_factory()
    # Ended a moment ago, so the instance is fresh when the bot starts.
    success = stand_ins.dcs.add_backup(
        stand_ins.prod.instance_id,
        created_at=stand_ins.dcs.now() - 0.02,
        waiting_seconds=0,
        backuping_seconds=0.01,
    )
    window = 0.0005 * 3600

    world = await world_factory(stale_watch(0.0005), stand_ins=stand_ins)
    alert = await world.channel_message(ALERTS, timeout=window + 5)
    await world.more_polls(world.prod, 4)

    assert "has had no successful backup in the last 0.0005 h" in alert.shown
    assert float(alert.ts) >= success.finished_at + window
    assert world.slack.channel_messages(ALERTS) == [alert]


async def test_an_instance_without_any_backup_is_alerted_once(world_factory: WorldFactory) -> None:
    world = await world_factory(stale_watch(26))

    alert = await world.channel_message(ALERTS)
    await world.more_polls(world.prod, 4)

    assert "has had no successful backup in the last 26 h (none is on record)." in alert.shown
    assert world.slack.channel_messages(ALERTS) == [alert]
