"""Following backups to their end: outcome notices in the thread, exactly once, at the cost of one list
call per instance and cycle, through throttling and server errors."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.standins.dcs.control import CallRecord, ManualClock
from bot.standins.slack.timeline import Message
from tests.e2e.conftest import (
    ALERTS,
    DEFAULT_POLICY,
    OPS,
    PRIVATE,
    PROJECT_ID,
    DcsGate,
    StandIns,
    StandInsFactory,
    World,
    WorldFactory,
    bot_request,
    seed_requests,
)

# A watch keeps the tracker listing redis-prod every cycle after the followed backup has ended, so a test
# can watch cycles pass by counting list calls.
WATCHED_PROD = (
    DEFAULT_POLICY
    + f"""
[[watch]]
instances = ["redis-prod"]
channel = "{ALERTS}"
"""
)


async def start_backup(world: World, text: str = 'redis-prod aof "tracked"') -> Message:
    card = await world.card(text)
    assert await world.click(card, "backup_confirm") == 200
    return await world.channel_message(OPS)


async def request_of(world: World, backup_id: str, *, settled: bool = True) -> BackupRequest:
    """The request behind ``backup_id``; with ``settled``, once tracking has recorded its end, which
    happens just after the notice went out (a notice Slack refuses is retried before anything is recorded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while True:
        request = await world.bot.requests.by_backup_id(backup_id)
        assert request is not None
        if not settled or request.state != RequestState.SUBMITTED or loop.time() > deadline:
            return request
        await asyncio.sleep(0.02)


def mib(size: int) -> str:
    return f"{size / 1024**2:.1f} MiB"


# --- outcome notices ------------------------------------------------------------------------------------


async def test_success_is_announced_in_the_thread_with_size_and_duration(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory
) -> None:
    clock = ManualClock()
    stand_ins = await stand_ins_factory(dcs_clock=clock)
    stand_ins.dcs.waiting_seconds, stand_ins.dcs.backuping_seconds = 5.0, 60.0
    world = await world_factory(stand_ins=stand_ins)
    started = await start_backup(world)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    await world.more_polls(world.prod, 1)
    assert world.slack.thread(OPS, started.ts) == []

    clock.advance(65)
    [reply] = await world.thread_replies(started.ts)

    assert reply.shown == (
        f":white_check_mark: The backup of *redis-prod* succeeded in 1 min 5 s: {mib(backup.size)}.\n"
        f"backup_id `{backup.backup_id}`"
    )
    assert reply.text == "The backup of redis-prod succeeded." and not reply.broadcast


@pytest.mark.parametrize(
    ("error_code", "meaning"),
    [
        ("dcs.08.0002", "the backup timed out"),
        ("dcs.08.0005", "the backup bucket could not be created"),
        ("dcs.08.0099", "an error DCS does not document"),
    ],
)
async def test_failure_is_announced_with_the_records_error_code_and_its_meaning(
    world: World, error_code: str, meaning: str
) -> None:
    world.dcs.fail_next_backup(world.prod.instance_id, error_code)
    started = await start_backup(world)

    [reply] = await world.thread_replies(started.ts)

    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert (
        reply.shown.startswith(":x: The backup of *redis-prod* requested by")
        and f"backup_id `{backup.backup_id}`" in reply.shown
    )
    assert f": `{error_code}` — {meaning}." in reply.shown
    assert reply.broadcast, "a failure is also shown in the channel"
    request = await request_of(world, backup.backup_id)
    assert (request.state, request.backup_status) == (RequestState.FINISHED, "failed")


async def test_the_outcome_reaches_a_channel_the_bot_may_not_post_in(world: World) -> None:
    card = await world.card('redis-prod rdb "from the private channel"', channel=PRIVATE)
    await world.click(card, "backup_confirm")
    started = await world.channel_message(PRIVATE)

    outcome = await world.channel_message(PRIVATE, 2)

    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert started.source == outcome.source == "response_url"
    assert outcome.shown.startswith(":white_check_mark: The backup of *redis-prod* succeeded")
    assert backup.backup_id in outcome.shown
    assert not outcome.is_ephemeral


async def test_the_outcome_is_announced_exactly_once_and_recorded(world_factory: WorldFactory) -> None:
    world = await world_factory(WATCHED_PROD)
    started = await start_backup(world)
    await world.thread_replies(started.ts)

    await world.more_polls(world.prod, 5)

    assert len(world.slack.thread(OPS, started.ts)) == 1
    assert world.slack.channel_messages(OPS) == [started]
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    request = await request_of(world, backup.backup_id)
    assert request.state == RequestState.FINISHED
    assert request.backup_status == "succeed" and request.finished_at is not None
    outcomes = [r.entry for r in await world.bot.audit.records() if r.entry.kind == AuditKind.OUTCOME]
    assert [(e.request_id, e.backup_id, e.outcome) for e in outcomes] == [
        (request.request_id, backup.backup_id, "succeed")
    ]
    assert outcomes[0].detail["duration_seconds"] == pytest.approx(0.15, abs=0.01)


@pytest.mark.parametrize("final_status", ["expired", "deleted"])
async def test_expired_and_deleted_are_final_too(world: World, final_status: str) -> None:
    world.dcs.backuping_seconds = 60
    started = await start_backup(world)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    await world.more_polls(world.prod, 1)

    world.dcs.set_backup_status(backup.backup_id, final_status)
    [reply] = await world.thread_replies(started.ts)

    assert reply.shown.startswith(f"The backup of *redis-prod* ended as {final_status.capitalize()}.")
    assert backup.backup_id in reply.shown
    request = await request_of(world, backup.backup_id)
    assert (request.state, request.backup_status) == (RequestState.FINISHED, final_status)


async def test_an_undocumented_status_is_logged_once_and_the_backup_still_followed(world: World) -> None:
    world.dcs.backuping_seconds = 60
    started = await start_backup(world)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    world.dcs.set_backup_status(backup.backup_id, "archiving")

    await world.more_polls(world.prod, 4)

    assert world.slack.thread(OPS, started.ts) == []
    request = await request_of(world, backup.backup_id, settled=False)
    assert (request.state, request.backup_status) == (RequestState.SUBMITTED, "archiving")
    assert world.log.getvalue().count("undocumented status 'archiving'") == 1

    world.dcs.set_backup_status(backup.backup_id, "succeed")
    [reply] = await world.thread_replies(started.ts)
    assert "succeeded" in reply.shown


async def test_a_backup_running_longer_than_follow_for_is_given_up_once(world_factory: WorldFactory) -> None:
    world = await world_factory(WATCHED_PROD, follow_for=timedelta(seconds=0.3))
    world.dcs.backuping_seconds = 60
    started = await start_backup(world)
    [backup] = world.dcs.backups_of(world.prod.instance_id)

    [reply] = await world.thread_replies(started.ts)
    await world.more_polls(world.prod, 3)

    assert reply.shown.startswith(":hourglass: The backup of *redis-prod* is still running after ")
    assert backup.backup_id in reply.shown
    assert "I stopped following it" in reply.shown
    assert f"/dcs-backup status {backup.backup_id}" in reply.shown
    assert len(world.slack.thread(OPS, started.ts)) == 1
    assert world.dcs.backup_status(backup.backup_id) == "backuping"
    request = await request_of(world, backup.backup_id)
    assert request.state == RequestState.ABANDONED
    outcomes = [r.entry.outcome for r in await world.bot.audit.records() if r.entry.kind == AuditKind.OUTCOME]
    assert outcomes == ["abandoned"]


# --- the cost of polling ----------------------------------------------------------------------------------


async def seed_followed(stand_ins: StandIns, database: Path, per_instance: dict[str, int]) -> None:
    """Leaves ``per_instance[name]`` running backups of each instance followed in the bot's database, as an
    earlier process would have. DCS runs one backup per instance at a time, so several followed at once
    on one instance exist only as such history (backups whose end a stopped bot never saw)."""
    requests = []
    for instance in (stand_ins.prod, stand_ins.staging):
        for number in range(per_instance.get(instance.name, 0)):
            record = stand_ins.dcs.add_backup(
                instance.instance_id, backup_type="manual", remark=f"earlier {number}", backuping_seconds=60
            )
            requests.append(
                bot_request(
                    instance, state=RequestState.SUBMITTED, remark=record.remark, backup_id=record.backup_id
                )
            )
    await seed_requests(database, *requests)


async def test_each_cycle_lists_an_instance_once_however_many_of_its_backups_are_followed(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory, tmp_path: Path
) -> None:
    stand_ins = await stand_ins_factory()
    database = tmp_path / "followed.sqlite3"
    await seed_followed(stand_ins, database, {"redis-prod": 3, "redis-staging": 1})
    # A long interval leaves the cycles to this test, after the one the bot runs as it starts.
    world = await world_factory(stand_ins=stand_ins, bot_database=database, bot_poll_interval=3600)
    await world.dcs.wait_for_calls(lambda: world.polls(world.prod) == world.polls(world.staging) == 1)

    for cycle in range(1, 4):
        report = await world.bot.tracker.cycle()

        assert sorted(report.polled) == sorted([world.prod.instance_id, world.staging.instance_id])
        assert (world.polls(world.prod), world.polls(world.staging)) == (1 + cycle, 1 + cycle)
    assert world.dcs.calls_to("create_backup") == []
    assert all(r.state == RequestState.SUBMITTED for r in await world.requests())


async def test_instances_are_listed_concurrently(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory, tmp_path: Path
) -> None:
    gate = DcsGate()
    stand_ins = await stand_ins_factory(dcs_gate=gate)
    database = tmp_path / "followed.sqlite3"
    await seed_followed(stand_ins, database, {"redis-prod": 1, "redis-staging": 1})
    world = await world_factory(stand_ins=stand_ins, bot_database=database)

    # Both lists reach DCS while neither has been answered: one does not wait for the other.
    prod_path = f"GET /v2/{PROJECT_ID}/instances/{world.prod.instance_id}/backups"
    staging_path = f"GET /v2/{PROJECT_ID}/instances/{world.staging.instance_id}/backups"
    await gate.held(prod_path)
    await gate.held(staging_path)
    assert sorted(gate.arrived) == sorted([prod_path, staging_path])
    assert world.dcs.calls == []

    gate.open()
    await world.dcs.wait_for_calls(lambda: min(world.polls(world.prod), world.polls(world.staging)) >= 2)


# --- throttling and server errors --------------------------------------------------------------------------


def list_calls(world: World) -> list[CallRecord]:
    return world.dcs.calls_to("list_backups", instance_id=world.prod.instance_id)


async def test_polling_waits_as_long_as_retry_after_asks_then_announces_once(world: World) -> None:
    # A slow throttled answer: the pause counts from the answer, not from when the bot asked.
    world.dcs.inject_fault(
        endpoint="list_backups",
        status=429,
        retry_after=0.5,
        delay=0.3,
        instance_id=world.prod.instance_id,
    )
    started = await start_backup(world)

    [reply] = await world.thread_replies(started.ts)

    assert "succeeded" in reply.shown
    throttled, after, *_ = list_calls(world)
    assert throttled.status == 429 and after.status == 200
    # The poll interval is 0.05 s; nothing asked DCS about the instance again before 0.5 s had passed.
    assert after.at - throttled.at >= 0.5
    # The DCS client waited it out within the same poll (reads are retried within DCS_TIMEOUT).
    assert "DCS list_backups failed (HTTP 429" in world.log.getvalue()


@pytest.mark.parametrize("status", [500, 503])
async def test_polling_backs_off_through_server_errors_and_still_announces_once(
    world: World, status: int
) -> None:
    world.dcs.inject_fault(
        endpoint="list_backups", status=status, times=3, instance_id=world.prod.instance_id
    )
    started = await start_backup(world)

    [reply] = await world.thread_replies(started.ts)

    assert "succeeded" in reply.shown
    calls = list_calls(world)
    assert [c.status for c in calls[:4]] == [status, status, status, 200]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(calls[:4])]
    # Exponential: one, two, four poll intervals (0.05 s) after each failure.
    for gap, least in zip(gaps, (0.05, 0.1, 0.2), strict=True):
        assert gap >= least
    assert len(world.slack.thread(OPS, started.ts)) == 1


async def test_an_outcome_notice_slack_refuses_is_posted_on_a_later_cycle_once(world: World) -> None:
    started = await start_backup(world)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    world.slack.fail("chat.postMessage", "internal_error", times=2)

    [reply] = await world.thread_replies(started.ts)

    assert "The backup of *redis-prod* succeeded" in reply.shown and backup.backup_id in reply.shown
    request = await request_of(world, backup.backup_id)
    assert request.state == RequestState.FINISHED
    assert len(world.slack.thread(OPS, started.ts)) == 1
    refused = [c for c in world.slack.calls("chat.postMessage") if c.params.get("thread_ts") == started.ts]
    assert len(refused) == 3, "two refused attempts, then the one that went out"


# --- one failing request does not stop the others -------------------------------------------------------


async def test_a_request_whose_handling_fails_does_not_stop_the_others_and_is_logged_once(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory, tmp_path: Path
) -> None:
    stand_ins = await stand_ins_factory()
    database = tmp_path / "followed.sqlite3"
    running = stand_ins.dcs.add_backup(
        stand_ins.prod.instance_id, backup_type="manual", remark="stuck", backuping_seconds=600
    )
    done = stand_ins.dcs.add_backup(stand_ins.staging.instance_id, backup_type="manual", remark="done")
    odd = bot_request(
        stand_ins.prod, state=RequestState.SUBMITTED, remark="stuck", backup_id=running.backup_id
    )
    fine = bot_request(
        stand_ins.staging, state=RequestState.SUBMITTED, remark="done", backup_id=done.backup_id
    )
    await seed_requests(database, odd, fine)
    # The store refuses every change to the first request, as a damaged row or a full disk would.
    with closing(sqlite3.connect(database)) as connection:
        connection.execute(
            "CREATE TRIGGER damaged BEFORE UPDATE ON requests "
            f"WHEN OLD.request_id = '{odd.request_id}' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )
        connection.commit()

    world = await world_factory(stand_ins=stand_ins, bot_database=database)
    outcome = await world.channel_message(OPS)

    assert "The backup of *redis-staging* succeeded" in outcome.shown and done.backup_id in outcome.shown
    assert (await request_of(world, done.backup_id)).state == RequestState.FINISHED
    await world.more_polls(world.prod, 4)
    logged = [line for line in world.log.getvalue().splitlines() if " DEBUG " not in line]
    failures = [line for line in logged if odd.request_id in line]
    assert len(failures) == 1, failures
    assert "disk I/O error" in failures[0]
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("DROP TRIGGER damaged")
        connection.commit()
    await world.more_polls(world.prod, 3)
    assert (await request_of(world, running.backup_id, settled=False)).backup_status == "backuping"
