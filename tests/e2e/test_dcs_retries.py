"""DCS reads (GET) are retried with jittered backoff on 429, 5xx and lost connections, honouring
``Retry-After``, all within ``DCS_TIMEOUT``; the backup POST is never repeated."""

from __future__ import annotations

import time

import aiohttp
import pytest

from bot.standins.faults import Answer, Fault
from tests.e2e.conftest import ALICE, OPS, World, WorldFactory


async def metrics_text(world: World) -> str:
    async with aiohttp.ClientSession() as session, session.get(world.server.make_url("/metrics")) as response:
        assert response.status == 200
        return await response.text()


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        pytest.param(Fault(Answer.ERROR, target="show_instance", status=503), "server_error", id="503"),
        pytest.param(
            Fault(Answer.ERROR, target="show_instance", status=429, retry_after=0.2), "rate_limited", id="429"
        ),
        # aiohttp itself sends an idempotent request again once when a kept-alive connection is closed.
        pytest.param(
            Fault(Answer.NOTHING, target="show_instance", times=2), "no_answer", id="connection-closed"
        ),
        pytest.param(Fault(Answer.HTML, target="show_instance", status=502), "server_error", id="html-502"),
        pytest.param(Fault(Answer.ERROR, target="list_instances", status=500), "server_error", id="list-500"),
    ],
)
async def test_one_passing_fault_on_the_look_up_still_gets_a_card(
    world: World, fault: Fault, reason: str
) -> None:
    world.dcs.inject(fault)

    card = await world.card("redis-prod rdb")

    assert "redis-prod" in card.shown + str(card.blocks)
    assert fault.target is not None
    statuses = [call.status for call in world.dcs.calls_to(fault.target)]
    assert len(statuses) == fault.times + 1 and statuses[-1] == 200, statuses
    counted = f'dcs_bot_dcs_retries_total{{cloud="default",endpoint="{fault.target}",reason="{reason}"}} 1.0'
    assert counted in await metrics_text(world)


async def test_retry_after_is_honoured(world: World) -> None:
    world.dcs.inject(Fault(Answer.ERROR, target="show_instance", status=429, retry_after=0.6))

    await world.card("redis-prod rdb")

    first, second = world.dcs.calls_to("show_instance")
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.6


async def test_a_fault_that_outlasts_dcs_timeout_ends_within_it(world_factory: WorldFactory) -> None:
    world = await world_factory(dcs_timeout=1.5)
    world.dcs.inject(Fault(Answer.ERROR, target="show_instance", status=503, times=1000))

    started = time.monotonic()
    result = await world.command("redis-prod rdb")
    assert result.status == 200
    reply = await world.reply_to(ALICE, timeout=5)
    took = time.monotonic() - started

    assert "could not get an answer from DCS" in reply.shown and "503" in reply.shown
    assert took < 1.5 + 1.0, took  # the deadline, and a margin for a busy machine
    assert len(world.dcs.calls_to("show_instance")) >= 2
    assert await world.requests() == []


async def test_a_retry_after_beyond_dcs_timeout_is_not_waited_for(world_factory: WorldFactory) -> None:
    world = await world_factory(dcs_timeout=1)
    world.dcs.inject(Fault(Answer.ERROR, target="show_instance", status=429, retry_after=30))

    started = time.monotonic()
    await world.command("redis-prod rdb")
    reply = await world.reply_to(ALICE, timeout=5)

    assert time.monotonic() - started < 2.0  # far below the 30 s asked for
    assert "429" in reply.shown
    assert len(world.dcs.calls_to("show_instance")) == 1


async def test_the_backup_post_is_never_repeated(world: World) -> None:
    card = await world.card("redis-prod rdb")
    world.dcs.inject(Fault(Answer.ERROR, target="create_backup", status=503))

    await world.click(card, "backup_confirm")
    await world.channel_message(OPS)

    assert world.backups_created() == 1
