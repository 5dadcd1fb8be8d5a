"""Notices Slack refuses are retried within a time budget, not a number of attempts; one given up is audited
as lost (never as delivered) and reaches the requester through the response_url while that still works."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.standins.faults import Answer, Fault
from tests.e2e.conftest import ALICE, OPS, World, WorldFactory


async def start(world: World, text: str = 'redis-prod rdb "refused notices"') -> None:
    card = await world.card(text)
    assert await world.click(card, "backup_confirm") == 200


async def the_request(world: World) -> BackupRequest:
    [request] = await world.requests()
    return request


async def notices_audited(world: World) -> list[AuditEntry]:
    return [r.entry for r in await world.bot.audit.records() if r.entry.kind == AuditKind.NOTICE]


async def until(world: World, predicate: object, what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():  # type: ignore[operator]
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.02)


async def test_a_started_notice_lost_to_a_502_is_retried_until_the_channel_knows_the_backup_id(
    world: World,
) -> None:
    # slack_sdk retries a 5xx once itself: the first post and its retry get the gateway's page, and so does
    # the tracker's first try; the next one goes through.
    world.slack.inject(Fault(Answer.HTML, target="chat.postMessage", status=502, times=3))

    await start(world)

    started = await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert started.shown.startswith(":floppy_disk:")
    assert f"backup_id `{backup.backup_id}`" in started.shown
    [reply] = await world.thread_replies(started.ts)
    assert reply.shown.startswith(":white_check_mark: The backup of") and backup.backup_id in reply.shown
    await until(world, lambda: _finished(world), "the request to finish")
    request = await the_request(world)
    assert request.message_ts == started.ts
    assert len(world.slack.channel_messages(OPS)) == 1
    assert await notices_audited(world) == []


async def _finished(world: World) -> bool:
    return (await the_request(world)).state == RequestState.FINISHED


async def test_a_notice_refused_beyond_the_budget_is_audited_lost_and_reaches_the_requester(
    world_factory: WorldFactory,
) -> None:
    world = await world_factory(notice_budget=timedelta(seconds=0.5))
    world.slack.fail("chat.postMessage", "internal_error", times=10_000)

    await start(world)

    async def lost() -> bool:
        return any(e.outcome == "lost" for e in await notices_audited(world))

    await until(world, lost, "the started notice to be given up")
    [entry] = await notices_audited(world)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert (entry.outcome, entry.request_id, entry.backup_id) == (
        "lost",
        (await the_request(world)).request_id,
        backup.backup_id,
    )
    assert entry.detail["notice"] == "started"
    assert entry.detail["response_url"] == "taken"
    # The requester got it privately, through the click's response_url.
    copy = world.slack.ephemeral_for(ALICE)[-1]
    assert f"backup_id `{backup.backup_id}`" in copy.shown
    assert "could not post this in <#COPS1>" in str(copy.blocks)
    assert world.slack.channel_messages(OPS) == []
    refusals = len(world.slack.calls("chat.postMessage"))
    assert refusals > 5, "retried for the budget, not for a count"

    world.slack.server.faults.clear()
    outcome = await world.channel_message(OPS)

    # No channel message to thread under: the outcome goes to the channel itself.
    assert outcome.thread_ts is None
    assert outcome.shown.startswith(":white_check_mark: The backup of *redis-prod* succeeded")
    assert backup.backup_id in outcome.shown
    await until(world, lambda: _finished(world), "the request to finish")
    outcomes = [r.entry for r in await world.bot.audit.records() if r.entry.kind == AuditKind.OUTCOME]
    assert [(e.outcome, e.detail["notice"]) for e in outcomes] == [("succeed", "delivered")]
