"""Bolt's authorization of each request needs no Slack call: the bot checked its token with ``auth.test`` at
start-up and Bolt is built from that answer. When Slack could not tell at start-up, the first request asks
``auth.test`` once more, and while Slack still cannot tell the request goes through on the token alone —
nobody is ever told to reinstall the app, and no Slack answer, however odd, fails a command."""

from __future__ import annotations

import pytest

from bot.slack.blocks import CONFIRM_ACTION
from bot.standins.faults import Answer, Fault
from tests.e2e.conftest import ALICE, StandInsFactory, World, WorldFactory

AUTH_TEST = "auth.test"
REINSTALL = "reinstall"

NOT_JSON = [
    pytest.param(Answer.HTML, 502, id="html-502"),
    pytest.param(Answer.TRUNCATED, None, id="truncated"),
    pytest.param(Answer.EMPTY, None, id="empty"),
    pytest.param(Answer.NOTHING, None, id="nothing"),
]


def assert_served_cleanly(world: World) -> None:
    log = world.log.getvalue()
    assert "Traceback" not in log, log
    assert REINSTALL not in log.lower(), log
    assert REINSTALL not in world.sent_by_bot().lower()


async def confirm_a_backup(world: World) -> None:
    """A command and a click on its card both get through, each with a clean ack."""
    card = await world.card("redis-prod rdb")
    assert world.acks[-1].status == 200 and REINSTALL not in world.acks[-1].body.lower()
    assert await world.click(card, CONFIRM_ACTION) == 200
    await world.dcs.wait_for_calls(lambda: len(world.dcs.calls_to("create_backup")) == 1)


@pytest.mark.parametrize(("answer", "status"), NOT_JSON)
async def test_a_fresh_bot_serves_its_first_request_whatever_auth_test_would_answer(
    world_factory: WorldFactory, answer: Answer, status: int | None
) -> None:
    world = await world_factory()
    # Start-up has checked the token; from here on auth.test would only answer garbage.
    world.slack.inject(Fault(answer, target=AUTH_TEST, status=status, times=10))

    await confirm_a_backup(world)

    assert_served_cleanly(world)
    assert len(world.slack.calls(AUTH_TEST)) == 1, "only the start-up check asks auth.test"


async def test_requests_ask_slack_nothing_for_authorization(world: World) -> None:
    await confirm_a_backup(world)
    await world.card('redis-staging rdb "again"')

    assert [call.method for call in world.slack.calls(AUTH_TEST)] == [AUTH_TEST]
    assert_served_cleanly(world)


@pytest.mark.parametrize(("answer", "status"), NOT_JSON)
async def test_while_slack_cannot_tell_who_the_bot_is_requests_go_through_on_the_token(
    world_factory: WorldFactory, stand_ins_factory: StandInsFactory, answer: Answer, status: int | None
) -> None:
    stand_ins = await stand_ins_factory()
    stand_ins.slack.inject(Fault(answer, target=AUTH_TEST, status=status, times=100))
    world = await world_factory(stand_ins=stand_ins)
    assert "could not check the bot token" in world.log.getvalue()

    await confirm_a_backup(world)

    assert_served_cleanly(world)
    assert world.slack.ephemeral_for(ALICE), "the person got the card"


async def test_once_slack_answers_the_bot_asks_no_more(
    world_factory: WorldFactory, stand_ins_factory: StandInsFactory
) -> None:
    stand_ins = await stand_ins_factory()
    stand_ins.slack.inject(Fault(Answer.NOTHING, target=AUTH_TEST, times=100))
    world = await world_factory(stand_ins=stand_ins)
    await world.card("redis-prod rdb")
    stand_ins.slack.server.faults.clear()
    world.slack.clear_calls()

    await world.card('redis-prod rdb "two"')
    await world.card('redis-prod rdb "three"')

    assert len(world.slack.calls(AUTH_TEST)) == 1, "asked once, then known"
    assert_served_cleanly(world)
