"""Restarts: a bot killed while a backup runs announces its outcome once after it starts again, and a
request a crash left between confirmation and DCS's answer is settled without ever being sent twice."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import RequestState
from bot.standins.dcs.control import ManualClock
from bot.standins.faults import Answer, Fault
from bot.store.database import to_db_time
from bot.store.migrations import MIGRATIONS
from tests.e2e.conftest import (
    DEFAULT_POLICY,
    OPS,
    DcsGate,
    Driver,
    StandInsFactory,
    WorldFactory,
    bot_environment,
    bot_request,
    seed_requests,
)
from tests.service.process import free_port, running_bot, wait_until_serving

CHECKING = ":hourglass_flowing_sand: *Outcome unknown, checking.*"


def request_states(database: Path) -> list[tuple[str, str | None]]:
    """(state, backup_id) of every request, read beside a running bot as an operator would."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        rows = connection.execute("SELECT state, backup_id FROM requests").fetchall()
    return [(str(state), backup_id) for state, backup_id in rows]


async def until_state(database: Path, expected: list[tuple[str, str | None]], timeout: float = 5.0) -> None:
    """Waits for another process to record ``expected`` (it has no event to wait on from here)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (states := request_states(database)) != expected:
        assert loop.time() < deadline, f"requests stayed {states}, expected {expected}"
        await asyncio.sleep(0.05)


async def test_a_bot_killed_mid_backup_announces_the_outcome_once_after_it_starts_again(
    stand_ins_factory: StandInsFactory, tmp_path: Path
) -> None:
    clock = ManualClock()
    stand_ins = await stand_ins_factory(dcs_clock=clock)
    stand_ins.dcs.waiting_seconds, stand_ins.dcs.backuping_seconds = 5.0, 60.0
    port = free_port()
    environment = bot_environment(tmp_path, stand_ins, DEFAULT_POLICY, port)
    health = f"http://127.0.0.1:{port}/healthz"
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    slack = Driver(stand_ins=stand_ins, bot_url=f"http://127.0.0.1:{port}/slack/events")

    async with running_bot(["serve"], environment, workdir) as first:
        await wait_until_serving(health, first)
        card = await slack.card('redis-prod aof "survives a crash"')
        assert await slack.click(card, "backup_confirm") == 200
        started = await slack.channel_message(OPS)
        # The tracker lists the instance only once the request is submitted, i.e. followed.
        await slack.more_polls(stand_ins.prod, 1)
        [backup] = stand_ins.dcs.backups_of(stand_ins.prod.instance_id)
        assert stand_ins.dcs.backup_status(backup.backup_id) == "waiting"

        first.signal(signal.SIGKILL)
        assert await first.exit_code() == -signal.SIGKILL

    async with running_bot(["serve"], environment, workdir) as second:
        await wait_until_serving(health, second)
        await slack.more_polls(stand_ins.prod, 2)
        assert slack.slack.thread(OPS, started.ts) == []

        clock.advance(65)
        [reply] = await slack.thread_replies(started.ts)

        assert reply.shown.startswith(":white_check_mark: The backup of *redis-prod* succeeded")
        assert backup.backup_id in reply.shown
        # Finished (recorded right after the notice went out): nothing is followed any more.
        await until_state(tmp_path / "bot.sqlite3", [("finished", backup.backup_id)])
    assert slack.slack.channel_messages(OPS) == [started]
    assert slack.backups_created() == 1


async def test_an_interrupted_submission_that_dcs_accepted_is_adopted_announced_and_followed(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory, tmp_path: Path
) -> None:
    stand_ins = await stand_ins_factory()
    remark = "Slack backup by @alice"
    stand_ins.dcs.add_backup(stand_ins.prod.instance_id, backup_type="manual", remark="someone else's")
    record = stand_ins.dcs.add_backup(stand_ins.prod.instance_id, backup_type="manual", remark=remark)
    database = tmp_path / "crashed.sqlite3"
    await seed_requests(database, bot_request(stand_ins.prod, state=RequestState.SUBMITTING, remark=remark))

    world = await world_factory(stand_ins=stand_ins, bot_database=database)
    started = await world.channel_message(OPS)
    [reply] = await world.thread_replies(started.ts)

    assert f"backup_id `{record.backup_id}`" in started.shown
    assert (
        reply.shown.startswith(":white_check_mark: The backup of *redis-prod* succeeded")
        and f"backup_id `{record.backup_id}`" in reply.shown
    )
    assert world.backups_created() == 0
    await until_state(database, [("finished", record.backup_id)])
    [request] = await world.requests()
    assert (request.state, request.backup_id, request.message_ts) == (
        RequestState.FINISHED,
        record.backup_id,
        started.ts,
    )
    recoveries = [r.entry for r in await world.bot.audit.records() if r.entry.kind == AuditKind.RECOVERY]
    assert [(e.outcome, e.detail["backup_id"]) for e in recoveries] == [("adopted", record.backup_id)]


async def test_an_interrupted_submission_dcs_shows_nothing_of_is_checked_then_reported_none_created(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory, tmp_path: Path
) -> None:
    stand_ins = await stand_ins_factory()
    remark = "Slack backup by @alice"
    # Not it: another remark, and an automatic backup.
    stand_ins.dcs.add_backup(stand_ins.prod.instance_id, backup_type="manual", remark="someone else's")
    stand_ins.dcs.add_backup(stand_ins.prod.instance_id, backup_type="auto", remark=remark)
    database = tmp_path / "crashed.sqlite3"
    await seed_requests(database, bot_request(stand_ins.prod, state=RequestState.SUBMITTING, remark=remark))

    # The checking window: max(20 poll intervals, 4 DCS timeouts) = 1.2 s.
    world = await world_factory(stand_ins=stand_ins, bot_database=database, dcs_timeout=0.3)
    notice = await world.channel_message(OPS)

    assert notice.shown.startswith(CHECKING)
    assert "The bot restarted while submitting the RDB backup of *redis-prod*" in notice.shown
    assert "not started" not in notice.shown and "not* started" not in notice.shown
    final = await world.channel_message(OPS, 2, timeout=10)
    assert final.shown.startswith(":x: *No backup was created*")
    assert "/dcs-backup list redis-prod" in final.shown
    await until_state(database, [("not_created", None)])
    assert world.backups_created() == 0
    assert world.polls(world.prod) >= 3
    recoveries = [r.entry for r in await world.bot.audit.records() if r.entry.kind == AuditKind.RECOVERY]
    assert [e.outcome for e in recoveries] == ["checking", "none_created"]


async def test_an_interrupted_submission_waits_while_dcs_cannot_tell_then_is_settled(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory, tmp_path: Path
) -> None:
    stand_ins = await stand_ins_factory()
    remark = "Slack backup by @alice"
    record = stand_ins.dcs.add_backup(stand_ins.prod.instance_id, backup_type="manual", remark=remark)
    stand_ins.dcs.inject_fault(endpoint="list_backups", status=503, times=2)
    database = tmp_path / "crashed.sqlite3"
    await seed_requests(database, bot_request(stand_ins.prod, state=RequestState.SUBMITTING, remark=remark))

    world = await world_factory(stand_ins=stand_ins, bot_database=database)
    await world.slack.wait_until(
        lambda: any(m.shown.startswith(":floppy_disk:") for m in world.slack.channel_messages(OPS)),
        what="the started notice",
    )
    *checking, started = world.slack.channel_messages(OPS)
    await world.thread_replies(started.ts)

    assert f"backup_id `{record.backup_id}`" in started.shown
    # While DCS could not tell, the channel heard at most that the bot is checking.
    assert all(m.shown.startswith(CHECKING) for m in checking) and len(checking) <= 1
    assert [c.status for c in world.dcs.calls_to("list_backups")][:3] == [503, 503, 200]
    assert world.backups_created() == 0


async def test_an_interrupted_submission_whose_backup_id_was_kept_is_adopted_exactly(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory, tmp_path: Path
) -> None:
    stand_ins = await stand_ins_factory()
    # Same remark twice: matching by remark could pick either; the kept backup_id cannot.
    stand_ins.dcs.add_backup(stand_ins.prod.instance_id, backup_type="manual", remark="same")
    record = stand_ins.dcs.add_backup(stand_ins.prod.instance_id, backup_type="manual", remark="same")
    database = tmp_path / "crashed.sqlite3"
    interrupted = bot_request(
        stand_ins.prod, state=RequestState.SUBMITTING, remark="same", backup_id=record.backup_id
    )
    await seed_requests(database, interrupted)

    world = await world_factory(stand_ins=stand_ins, bot_database=database)
    started = await world.channel_message(OPS)

    assert f"backup_id `{record.backup_id}`" in started.shown
    assert world.backups_created() == 0
    await until_state(database, [("finished", record.backup_id)])


# --- kill -9 while the outcome of a submission is being checked ---------------------------------------------


async def test_a_bot_killed_while_checking_adopts_the_backup_dcs_recorded_meanwhile_once(
    stand_ins_factory: StandInsFactory, tmp_path: Path
) -> None:
    gate = DcsGate(only="POST ")
    stand_ins = await stand_ins_factory(dcs_gate=gate)
    port = free_port()
    # The checking window: max(20 poll intervals, 4 DCS timeouts) = 2 s after the answer was lost.
    environment = bot_environment(tmp_path, stand_ins, DEFAULT_POLICY, port, DCS_TIMEOUT="0.5")
    health = f"http://127.0.0.1:{port}/healthz"
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    slack = Driver(stand_ins=stand_ins, bot_url=f"http://127.0.0.1:{port}/slack/events")
    database = tmp_path / "bot.sqlite3"

    async with running_bot(["serve"], environment, workdir) as first:
        await wait_until_serving(health, first)
        card = await slack.card('redis-prod rdb "across a crash"')
        assert await slack.click(card, "backup_confirm") == 200
        await gate.held("POST ")
        checking = await slack.channel_message(OPS)
        assert checking.shown.startswith(CHECKING)
        await until_state(database, [("checking", None)])

        first.signal(signal.SIGKILL)
        assert await first.exit_code() == -signal.SIGKILL
    # The backend carries out the POST the dead bot gave up on.
    gate.open()
    await stand_ins.dcs.wait_for_calls(lambda: len(stand_ins.dcs.calls_to("create_backup")) == 1)
    [backup] = stand_ins.dcs.backups_of(stand_ins.prod.instance_id)

    async with running_bot(["serve"], environment, workdir) as second:
        await wait_until_serving(health, second)
        started = await slack.channel_message(OPS, 2, timeout=10)
        assert f"backup_id `{backup.backup_id}`" in started.shown
        [reply] = await slack.thread_replies(started.ts, timeout=10)
        assert (
            reply.shown.startswith(":white_check_mark: The backup of *redis-prod*")
            and backup.backup_id in reply.shown
        )
        await until_state(database, [("finished", backup.backup_id)])
    assert slack.slack.channel_messages(OPS) == [checking, started]
    assert slack.backups_created() == 1


async def test_a_bot_killed_while_checking_reports_none_created_once_after_it_starts_again(
    stand_ins_factory: StandInsFactory, tmp_path: Path
) -> None:
    stand_ins = await stand_ins_factory()
    stand_ins.dcs.inject(Fault(Answer.ERROR, target="create_backup", status=504))
    port = free_port()
    environment = bot_environment(tmp_path, stand_ins, DEFAULT_POLICY, port, DCS_TIMEOUT="0.5")
    health = f"http://127.0.0.1:{port}/healthz"
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    slack = Driver(stand_ins=stand_ins, bot_url=f"http://127.0.0.1:{port}/slack/events")
    database = tmp_path / "bot.sqlite3"

    async with running_bot(["serve"], environment, workdir) as first:
        await wait_until_serving(health, first)
        card = await slack.card('redis-prod rdb "gone with the gateway"')
        assert await slack.click(card, "backup_confirm") == 200
        checking = await slack.channel_message(OPS)
        assert checking.shown.startswith(CHECKING) and "HTTP 504" in checking.shown
        await until_state(database, [("checking", None)])
        await slack.more_polls(stand_ins.prod, 2)

        first.signal(signal.SIGKILL)
        assert await first.exit_code() == -signal.SIGKILL

    async with running_bot(["serve"], environment, workdir) as second:
        await wait_until_serving(health, second)
        final = await slack.channel_message(OPS, 2, timeout=10)
        assert final.shown.startswith(":x: *No backup was created*")
        await until_state(database, [("not_created", None)])
        await asyncio.sleep(0.5)
    assert slack.slack.channel_messages(OPS) == [checking, final]
    assert slack.backups_created() == 1
    assert stand_ins.dcs.backups_of(stand_ins.prod.instance_id) == []


# --- an upgrade ------------------------------------------------------------------------------------------


def previous_release_database(path: Path, *rows: dict[str, str]) -> None:
    """A database as the release before the checking state left it (schema version 2), holding ``rows``."""
    with closing(sqlite3.connect(path)) as connection:
        for number, migration in enumerate(MIGRATIONS[:2], start=1):
            connection.executescript(f"BEGIN;\n{migration.sqlite}\nPRAGMA user_version = {number};\nCOMMIT;")
        for row in rows:
            names = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            connection.execute(f"INSERT INTO requests ({names}) VALUES ({marks})", list(row.values()))
        connection.commit()


async def test_a_database_of_the_previous_release_is_upgraded_in_place_and_used(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory, tmp_path: Path
) -> None:
    stand_ins = await stand_ins_factory()
    remark = "Slack backup by @alice"
    record = stand_ins.dcs.add_backup(stand_ins.staging.instance_id, backup_type="manual", remark=remark)
    now = datetime.now(UTC)
    database = tmp_path / "old.sqlite3"
    previous_release_database(
        database,
        {
            "request_id": "interrupted-before-the-upgrade",
            "state": "submitting",
            "requester_id": "UALICE1",
            "requester_name": "alice",
            "channel_id": OPS,
            "instance_id": stand_ins.staging.instance_id,
            "instance_name": stand_ins.staging.name,
            "backup_format": "rdb",
            "remark": remark,
            "rule": "sre-prod",
            "approval": "self",
            "approvers": "[]",
            "created_at": to_db_time(now),
            "expires_at": to_db_time(now + timedelta(minutes=5)),
            "confirmed_by": "UALICE1",
            "submitted_at": to_db_time(now),
        },
    )

    world = await world_factory(stand_ins=stand_ins, bot_database=database)

    adopted = await world.channel_message(OPS)
    assert f"backup_id `{record.backup_id}`" in adopted.shown
    card = await world.card('redis-prod rdb "after the upgrade"')
    assert await world.click(card, "backup_confirm") == 200
    started = await world.channel_message(OPS, 2)
    [reply] = await world.thread_replies(started.ts)
    assert reply.shown.startswith(":white_check_mark:")
    states = {r.request_id: r.state for r in await world.requests()}
    assert states["interrupted-before-the-upgrade"] in (RequestState.SUBMITTED, RequestState.FINISHED)
    assert world.backups_created() == 1
