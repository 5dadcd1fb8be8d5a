"""When DCS's answer to CreateBackup is lost — a timeout, a closed connection, a 5xx from the gateway —
the outcome is unknown: the bot says so, never "not started", looks for the backup in the instance's
records over several cycles, and then reports what it found. The POST is never sent twice.

These bots run with ``DCS_TIMEOUT=0.3`` and ``BOT_POLL_INTERVAL=0.05``, so the checking window is
max(20 poll intervals, 4 DCS timeouts) = 1.2 s.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.standins.faults import Answer, Fault
from bot.standins.slack.timeline import Message
from tests.e2e.conftest import ALICE, OPS, DcsGate, StandInsFactory, World, WorldFactory

FAST = {"dcs_timeout": 0.3}
CHECKING = ":hourglass_flowing_sand: *Outcome unknown, checking.*"
NONE_CREATED = ":x: *No backup was created*"


async def confirm(world: World, text: str = 'redis-prod rdb "answer lost"', *, user: str = ALICE) -> None:
    card = await world.card(text, user=user)
    assert await world.click(card, "backup_confirm", user=user) == 200


def never_said_not_started(world: World) -> None:
    said = world.sent_by_bot()
    assert "not* started" not in said and "not started" not in said


async def the_request(world: World) -> BackupRequest:
    [request] = await world.requests()
    return request


async def until_state(world: World, state: RequestState, timeout: float = 5.0) -> BackupRequest:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (request := await the_request(world)).state != state:
        assert loop.time() < deadline, f"the request stayed {request.state}, expected {state}"
        await asyncio.sleep(0.02)
    return request


async def audit_outcomes(world: World, kind: AuditKind) -> list[str | None]:
    return [r.entry.outcome for r in await world.bot.audit.records() if r.entry.kind == kind]


async def adopted_and_followed(world: World) -> Message:
    started = await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert started.shown.startswith(":floppy_disk:")
    assert f"backup_id `{backup.backup_id}`" in started.shown
    [reply] = await world.thread_replies(started.ts)
    assert (
        reply.shown.startswith(":white_check_mark: The backup of *redis-prod* succeeded")
        and f"backup_id `{backup.backup_id}`" in reply.shown
    )
    request = await until_state(world, RequestState.FINISHED)
    assert request.backup_id == backup.backup_id
    assert world.backups_created() == 1
    never_said_not_started(world)
    return started


async def checked_then_none_created(world: World, reason: str) -> None:
    checking = await world.channel_message(OPS)
    assert checking.shown.startswith(CHECKING), checking.shown
    assert reason in checking.shown
    assert f"<@{ALICE}>" in checking.shown and "redis-prod" in checking.shown
    await until_state(world, RequestState.CHECKING)
    looks_before = world.polls(world.prod)

    final = await world.channel_message(OPS, 2, timeout=10)

    assert final.shown.startswith(NONE_CREATED), final.shown
    assert "redis-prod" in final.shown and f"<@{ALICE}>" in final.shown
    request = await until_state(world, RequestState.NOT_CREATED)
    assert request.backup_id is None
    assert world.dcs.backups_of(world.prod.instance_id) == []
    assert world.backups_created() == 1, "the POST is never repeated"
    assert world.polls(world.prod) - looks_before >= 3, "looked over several cycles"
    never_said_not_started(world)
    await asyncio.sleep(0.2)
    assert len(world.slack.channel_messages(OPS)) == 2, "the outcome is announced once"
    assert await audit_outcomes(world, AuditKind.API_RESULT) == ["unknown"]
    assert await audit_outcomes(world, AuditKind.RECOVERY) == ["none_created"]


# --- the faults, one by one --------------------------------------------------------------------------


async def test_a_504_after_dcs_created_the_backup_is_adopted_not_called_a_failure(
    world_factory: WorldFactory,
) -> None:
    world = await world_factory(**FAST)
    world.dcs.inject(Fault(Answer.ERROR, target="create_backup", status=504, applied=True))

    await confirm(world)

    await adopted_and_followed(world)
    assert await audit_outcomes(world, AuditKind.API_RESULT) == ["unknown", "accepted"]
    assert await audit_outcomes(world, AuditKind.RECOVERY) == ["adopted"]


async def test_a_504_before_dcs_acted_is_unknown_then_reported_as_none_created(
    world_factory: WorldFactory,
) -> None:
    world = await world_factory(**FAST)
    world.dcs.inject(Fault(Answer.ERROR, target="create_backup", status=504))

    await confirm(world)

    await checked_then_none_created(world, "HTTP 504")


async def test_a_connection_lost_after_dcs_created_the_backup_adopts_it(world_factory: WorldFactory) -> None:
    world = await world_factory(**FAST)
    world.dcs.inject(Fault(Answer.NOTHING, target="create_backup", applied=True))

    await confirm(world)

    await adopted_and_followed(world)


async def test_a_connection_lost_before_dcs_acted_is_unknown_then_reported_as_none_created(
    world_factory: WorldFactory,
) -> None:
    world = await world_factory(**FAST)
    world.dcs.inject(Fault(Answer.NOTHING, target="create_backup"))

    await confirm(world)

    await checked_then_none_created(world, "could not be reached or did not answer in time")


async def test_a_create_slower_than_dcs_timeout_adopts_the_backup(world_factory: WorldFactory) -> None:
    world = await world_factory(**FAST)
    world.dcs.inject(Fault(Answer.NORMAL, target="create_backup", delay=1.0))

    await confirm(world)

    await adopted_and_followed(world)


async def test_a_backup_dcs_records_only_after_the_bot_gave_up_is_found_on_a_later_cycle(
    world_factory: WorldFactory,
) -> None:
    gate = DcsGate(only="POST ")
    # A window of 4 s, so that the backup certainly appears inside it however slow this machine is.
    world = await world_factory(dcs_gate=gate, dcs_timeout=1.0)

    await confirm(world)
    await gate.held("POST ")
    checking = await world.channel_message(OPS)
    assert checking.shown.startswith(CHECKING)
    assert world.dcs.backups_of(world.prod.instance_id) == []
    await world.more_polls(world.prod, 2)
    gate.open()  # the backend works on after the bot gave up, and records the backup now

    started = await world.channel_message(OPS, 2)

    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert f"backup_id `{backup.backup_id}`" in started.shown
    assert "I found the backup in the instance's backup records" in str(started.blocks)
    [reply] = await world.thread_replies(started.ts)
    assert reply.shown.startswith(":white_check_mark:")
    assert world.backups_created() == 1
    never_said_not_started(world)
    assert await audit_outcomes(world, AuditKind.RECOVERY) == ["adopted"]


# --- the link between request and backup ------------------------------------------------------------


async def test_another_confirm_for_the_instance_waits_while_one_is_being_checked(
    world_factory: WorldFactory,
) -> None:
    world = await world_factory(**FAST)
    world.dcs.inject(Fault(Answer.ERROR, target="create_backup", status=504))
    await confirm(world, 'redis-prod rdb "first"')
    await world.channel_message(OPS)
    second = await world.card('redis-prod rdb "second"')
    ephemerals = len(world.slack.ephemeral_for(ALICE))

    assert await world.click(second, "backup_confirm") == 200

    answer = await world.reply_to(ALICE, ephemerals + 1)
    assert "Another backup of *redis-prod* is being started" in answer.shown
    assert "try again" in answer.shown
    assert world.backups_created() == 1
    states = {r.remark: r.state for r in await world.requests()}
    assert states == {"first": RequestState.CHECKING, "second": RequestState.PENDING}
    # Once the first is settled, the second may go.
    await world.channel_message(OPS, 2, timeout=10)
    assert await world.click(second, "backup_confirm") == 200
    started = await world.channel_message(OPS, 3)
    assert started.shown.startswith(":floppy_disk:")
    assert world.backups_created() == 2


async def test_a_manual_backup_with_the_same_remark_is_not_taken_for_ours(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory
) -> None:
    stand_ins = await stand_ins_factory()
    world = await world_factory(stand_ins=stand_ins, **FAST)
    remark = "nightly check"
    a_minute_ago = (datetime.now(UTC) - timedelta(minutes=1)).timestamp()
    foreign = world.dcs.add_backup(
        world.prod.instance_id, backup_type="manual", remark=remark, created_at=a_minute_ago
    )
    world.dcs.inject(Fault(Answer.ERROR, target="create_backup", status=504, applied=True))

    await confirm(world, f'redis-prod rdb "{remark}"')

    final = await world.channel_message(OPS, 2, timeout=10)
    ours = next(b for b in world.dcs.backups_of(world.prod.instance_id) if b.backup_id != foreign.backup_id)
    assert final.shown.startswith(":warning: *Outcome still unknown*"), final.shown
    assert foreign.backup_id in final.shown and ours.backup_id in final.shown
    request = await until_state(world, RequestState.UNKNOWN)
    assert request.backup_id is None, "two records could be ours: no guess"
    assert world.backups_created() == 1
    never_said_not_started(world)
