"""Slack answers that are not what the bot expects — a gateway's HTML page, an empty or cut-off body, a
closed connection, an answer slower than the bot waits — on each Slack call the bot makes: the user-group
look-up, the channel post after DCS accepted a backup, the tracker's notices and response_url posts.
None of them crashes a handler, and a passing one never changes a request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.standins.faults import Answer, Fault
from tests.e2e.conftest import (
    ALICE,
    BOB,
    CAROL,
    OPS,
    RANDOM,
    StandInsFactory,
    World,
    WorldFactory,
    bot_request,
    seed_requests,
)

GROUPS = "usergroups.users.list"
POST = "chat.postMessage"
WENT_WRONG = "something went wrong"

# Answers without a readable Slack error: each is a passing failure. ``times`` outlasts slack_sdk's own
# retries (one after a dropped connection, one after a 500/503).
NOT_JSON = [
    pytest.param(Answer.HTML, 502, id="html-502"),
    pytest.param(Answer.HTML, 504, id="html-504"),
    pytest.param(Answer.EMPTY, None, id="empty"),
    pytest.param(Answer.TRUNCATED, None, id="truncated"),
    pytest.param(Answer.NOTHING, None, id="nothing"),
]


def fault(answer: Answer, status: int | None, target: str, times: int = 10) -> Fault:
    return Fault(answer, target=target, status=status, times=times)


async def state_of(world: World, request_id: str) -> RequestState:
    request = await world.bot.requests.get(request_id)
    assert request is not None
    return request.state


async def until_state(world: World, request_id: str, state: RequestState, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        current = await state_of(world, request_id)
        if current == state:
            return
        assert loop.time() < deadline, f"the request stayed {current}, expected {state}"
        await asyncio.sleep(0.02)


async def only_request(world: World) -> BackupRequest:
    [request] = await world.requests()
    return request


def assert_no_traceback(world: World) -> None:
    log = world.log.getvalue()
    assert "Traceback" not in log, log
    assert "unexpected error" not in log, log


# --- the user-group look-up -------------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "status"), NOT_JSON)
async def test_a_group_member_is_asked_to_try_again_when_slack_cannot_tell(
    world: World, answer: Answer, status: int | None
) -> None:
    world.slack.inject(fault(answer, status, GROUPS))

    await world.command("redis-prod rdb", user=CAROL)
    reply = await world.reply_to(CAROL)

    assert reply.is_ephemeral and world.slack.buttons(reply) == []
    assert "try again" in reply.shown and WENT_WRONG not in reply.shown
    assert ":no_entry:" not in reply.shown, "no refusal: the policy did not decide against Carol"
    assert world.dcs.calls == [] and await world.requests() == []
    kinds = [r.entry.kind for r in await world.bot.audit.records()]
    assert AuditKind.DECISION not in kinds
    assert_no_traceback(world)


async def test_a_definite_slack_error_still_fails_closed_and_says_why(world: World) -> None:
    world.slack.fail(GROUPS, "missing_scope", times=10)

    await world.command("redis-prod rdb", user=CAROL)
    reply = await world.reply_to(CAROL)

    assert ":no_entry:" in reply.shown and "missing_scope" in reply.shown
    assert world.dcs.calls == [] and await world.requests() == []


async def test_a_slow_group_look_up_is_a_passing_failure(world: World) -> None:
    world.bot.slack.timeout = 1
    world.slack.inject(Fault(Answer.NORMAL, target=GROUPS, delay=5, times=10))

    await world.command("redis-prod rdb", user=CAROL)
    reply = await world.reply_to(CAROL, timeout=3)

    assert "try again" in reply.shown and world.dcs.calls == []


async def test_last_known_members_are_served_through_a_passing_error(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every look-up asks Slack again, so the second one meets the fault.
    monkeypatch.setattr("bot.slack.groups.MEMBERS_TTL", 0.0)
    await world.card("redis-prod rdb", user=CAROL)
    world.slack.inject(fault(Answer.HTML, 502, GROUPS))

    card = await world.card('redis-prod rdb "through a 502"', user=CAROL)

    assert world.slack.buttons(card)
    assert "last known members" in world.log.getvalue()
    assert len(world.slack.calls(GROUPS)) >= 4, "Slack was asked again, and failed"
    assert_no_traceback(world)


async def test_concurrent_commands_share_one_look_up_per_group(world: World) -> None:
    # Slow answers, so that all four commands are in flight together.
    world.slack.inject(Fault(Answer.NORMAL, target=GROUPS, delay=0.3, times=20))

    await asyncio.gather(*(world.command(f'redis-prod rdb "number {n}"', user=CAROL) for n in range(4)))
    await world.reply_to(CAROL, 4)

    groups = sorted(str(call.params.get("usergroup")) for call in world.slack.calls(GROUPS))
    assert groups == ["SLEADS1", "SSRE1"]
    assert all(world.slack.buttons(reply) for reply in world.slack.ephemeral_for(CAROL))


async def test_a_passing_error_at_click_time_leaves_the_request_pending(world_factory: WorldFactory) -> None:
    first = await world_factory()
    card = await first.card('redis-prod rdb "after a restart"', user=CAROL)
    await first.stop()
    # A new process knows no members yet.
    world = await world_factory(stand_ins=first.stand_ins)
    world.slack.inject(fault(Answer.HTML, 502, GROUPS))

    await world.click(card, "backup_confirm", user=CAROL)
    told = await world.reply_to(CAROL, 2)

    assert "Slack could not tell" in told.shown and "try again in a moment" in told.shown
    assert world.slack.buttons(card), "the card keeps its buttons"
    request = await only_request(world)
    assert request.state == RequestState.PENDING and world.backups_created() == 0

    world.slack.server.faults.clear()
    await world.click(card, "backup_confirm", user=CAROL)
    await world.channel_message(OPS)

    assert world.backups_created() == 1
    assert_no_traceback(world)


async def test_a_passing_error_at_approval_time_leaves_the_request_waiting(
    world_factory: WorldFactory,
) -> None:
    first = await world_factory()
    first.slack.set_usergroup("SLEADS1", [CAROL])
    card = await first.card('redis-staging rdb "four eyes"', user=BOB)
    await first.click(card, "backup_confirm", user=BOB)
    approval = await first.channel_message(OPS)
    await first.stop()
    world = await world_factory(stand_ins=first.stand_ins)
    world.slack.inject(fault(Answer.TRUNCATED, None, GROUPS))

    await world.click(approval, "backup_approve", user=CAROL)
    told = await world.reply_to(CAROL)

    assert "Slack could not tell" in told.shown and "try again in a moment" in told.shown
    assert world.slack.buttons(approval)
    assert (await only_request(world)).state == RequestState.AWAITING_APPROVAL

    world.slack.server.faults.clear()
    await world.click(approval, "backup_approve", user=CAROL)
    await world.channel_message(OPS, 2)
    assert world.backups_created() == 1
    assert_no_traceback(world)


# --- the channel post after DCS accepted the backup -------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        pytest.param(Answer.HTML, 502, id="html-502"),
        pytest.param(Answer.EMPTY, None, id="empty"),
        pytest.param(Answer.TRUNCATED, None, id="truncated"),
    ],
)
async def test_an_unreadable_answer_to_the_start_notice_does_not_stop_the_backup_being_followed(
    world: World, answer: Answer, status: int | None
) -> None:
    card = await world.card('redis-prod aof "notice lost"')
    world.slack.inject(fault(answer, status, POST, times=1))

    await world.click(card, "backup_confirm")
    request = await only_request(world)
    await until_state(world, request.request_id, RequestState.FINISHED)

    assert world.backups_created() == 1
    assert not [m for m in world.slack.ephemeral_for(ALICE) if WENT_WRONG in m.shown]
    assert_no_traceback(world)


async def test_a_hung_response_url_does_not_hold_up_the_backup(world: World) -> None:
    world.bot.slack.timeout = 1
    card = await world.card('redis-prod aof "card replacement hangs"')
    # Replacing the card (the click's response_url) answers only after 5 s.
    world.slack.inject(Fault(Answer.NORMAL, target="response_url", delay=5))

    await world.click(card, "backup_confirm")
    await world.channel_message(OPS, timeout=3)

    assert world.backups_created() == 1
    assert_no_traceback(world)


# --- the tracker -----------------------------------------------------------------------------------------


async def test_one_unreadable_notice_answer_does_not_abort_the_cycle_for_the_others(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory, tmp_path: Path
) -> None:
    stand_ins = await stand_ins_factory()
    database = tmp_path / "followed.sqlite3"
    requests = []
    for instance, channel in ((stand_ins.prod, OPS), (stand_ins.staging, RANDOM)):
        finished = stand_ins.dcs.now() - 60
        record = stand_ins.dcs.add_backup(
            instance.instance_id, backup_type="manual", remark="earlier", created_at=finished
        )
        requests.append(
            bot_request(
                instance,
                state=RequestState.SUBMITTED,
                remark="earlier",
                backup_id=record.backup_id,
                channel=channel,
            )
        )
    await seed_requests(database, *requests)
    # The first notice of the first cycle gets half an answer.
    stand_ins.slack.inject(Fault(Answer.TRUNCATED, target=POST))

    # A long interval: only the cycle the bot runs as it starts.
    world = await world_factory(stand_ins=stand_ins, bot_database=database, bot_poll_interval=3600)
    await world.slack.wait_for(POST, 2, timeout=3)

    assert {str(c.params.get("channel")) for c in world.slack.calls(POST)} == {OPS, RANDOM}
    assert "tracking cycle failed" not in world.log.getvalue()
    assert_no_traceback(world)
