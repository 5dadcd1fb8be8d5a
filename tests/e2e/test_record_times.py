"""Backup records whose times have no zone are read as UTC; a time that is no time is taken as absent
(logged once). Neither stops tracking: the bot's own backups and the watched estate are still announced."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.standins.dcs.control import EmulatedBackup, ManualClock
from tests.e2e.conftest import ALERTS, DEFAULT_POLICY, OPS, StandInsFactory, World, WorldFactory

WATCHED_PROD = (
    DEFAULT_POLICY
    + f"""
[[watch]]
instances = ["redis-prod"]
channel = "{ALERTS}"
events = ["failed", "succeed"]
"""
)

SEPARATORS = {"T": "T", "space": " "}


def naive(moment: float, separator: str) -> str:
    """``moment`` in UTC, written without a zone: ``2026-12-01T10:00:00`` or ``2026-12-01 10:00:00``."""
    return datetime.fromtimestamp(moment, UTC).replace(tzinfo=None).isoformat(separator, "seconds")


def without_zones(record: EmulatedBackup, separator: str) -> dict[str, object]:
    return {
        "created_at": naive(record.created_at, separator),
        "execution_at": naive(record.started_at, separator),
        "updated_at": naive(record.finished_at, separator),
    }


def assert_tracking_never_broke(world: World) -> None:
    log = world.log.getvalue()
    assert "Traceback" not in log
    assert "can't compare" not in log and "unreadable body" not in log


async def start_backup(world: World) -> tuple[str, EmulatedBackup]:
    card = await world.card('redis-prod rdb "zones"')
    assert await world.click(card, "backup_confirm") == 200
    started = await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    return started.ts, backup


@pytest.mark.parametrize("separator", SEPARATORS.values(), ids=SEPARATORS.keys())
async def test_the_bots_own_backup_with_times_without_a_zone_is_announced(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory, separator: str
) -> None:
    clock = ManualClock()
    stand_ins = await stand_ins_factory(dcs_clock=clock)
    stand_ins.dcs.waiting_seconds, stand_ins.dcs.backuping_seconds = 5.0, 60.0
    world = await world_factory(WATCHED_PROD, stand_ins=stand_ins)
    ts, backup = await start_backup(world)
    world.dcs.set_record_quirk(backup.backup_id, **without_zones(backup, separator))
    await world.more_polls(world.prod, 2)

    clock.advance(65)
    [reply] = await world.thread_replies(ts)

    assert (
        reply.shown.startswith(":white_check_mark: The backup of *redis-prod* succeeded")
        and f"backup_id `{backup.backup_id}`" in reply.shown
    )
    assert "in 1 min 5 s" in reply.shown, "the times were read as UTC"
    await world.more_polls(world.prod, 3)
    assert_tracking_never_broke(world)


@pytest.mark.parametrize("separator", SEPARATORS.values(), ids=SEPARATORS.keys())
async def test_a_watched_backup_with_times_without_a_zone_is_announced(
    world_factory: WorldFactory, separator: str
) -> None:
    world = await world_factory(WATCHED_PROD)
    ending = world.dcs.add_backup(
        world.prod.instance_id,
        backup_type="auto",
        outcome="failed",
        created_at=world.dcs.now() - 60,
        waiting_seconds=0,
        # Ends over a second from now, so that even written to the second it ends after the watch began.
        backuping_seconds=61.2,
    )
    world.dcs.set_record_quirk(ending.backup_id, **without_zones(ending, separator))

    notice = await world.channel_message(ALERTS)

    assert f"`{ending.backup_id}`" in notice.shown and "failed in 1 min" in notice.shown
    await world.more_polls(world.prod, 3)
    assert_tracking_never_broke(world)


async def test_times_that_are_no_times_are_taken_as_absent_and_logged_once(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory
) -> None:
    clock = ManualClock()
    stand_ins = await stand_ins_factory(dcs_clock=clock)
    stand_ins.dcs.waiting_seconds, stand_ins.dcs.backuping_seconds = 5.0, 60.0
    world = await world_factory(WATCHED_PROD, stand_ins=stand_ins)
    ts, backup = await start_backup(world)
    world.dcs.set_record_quirk(
        backup.backup_id, created_at="yesterday", updated_at="2026-13-45T99:00:00", execution_at=17
    )
    await world.more_polls(world.prod, 2)

    clock.advance(65)
    [reply] = await world.thread_replies(ts)
    await world.more_polls(world.prod, 3)

    assert (
        reply.shown.startswith(":white_check_mark: The backup of *redis-prod* succeeded")
        and f"backup_id `{backup.backup_id}`" in reply.shown
    )
    assert_tracking_never_broke(world)
    log = world.log.getvalue()
    assert log.count("'yesterday'") == 1, log
    assert log.count("'2026-13-45T99:00:00'") == 1, log
