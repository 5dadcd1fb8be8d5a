"""Housekeeping in the background: cards nobody answered expire on their own, and finished requests and
watch memory older than BOT_RETENTION_DAYS are pruned (the audit trail is kept)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.store.database import open_database
from bot.store.watch import SqlWatchStore
from tests.e2e.conftest import (
    ALICE,
    BOB,
    OPS,
    StandIns,
    World,
    WorldFactory,
    bot_request,
    seed_requests,
)
from tests.factories import make_request

TTL = 0.3


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 5.0) -> None:
    """Waits for the background work to change the database (there is no event to wait on from here)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.02)


async def request_in(world: World, request_id: str) -> BackupRequest | None:
    return await world.bot.requests.get(request_id)


async def expired(world: World) -> BackupRequest:
    [request] = await world.requests()

    async def is_expired() -> bool:
        current = await request_in(world, request.request_id)
        return current is not None and current.state == RequestState.EXPIRED

    await until(is_expired, "the request to expire")
    current = await request_in(world, request.request_id)
    assert current is not None
    return current


async def test_a_card_nobody_answers_expires_and_the_requester_is_told(world_factory: WorldFactory) -> None:
    world = await world_factory(bot_confirm_ttl=TTL)
    card = await world.card("redis-prod rdb")
    # Built while the buttons still show, sent after the expiry: a click from a client that lagged behind.
    late_click, _ = world.slack.build_click(user_id=ALICE, message=card, action_id="backup_confirm")

    request = await expired(world)
    # The card came as the command's answer, so the command's response_url replaces it.
    await world.slack.wait_until(lambda: "expired" in card.shown, what="the card replaced")

    assert ":hourglass: This request to back up *redis-prod* expired" in card.shown
    assert "Nothing was backed up" in card.shown
    assert world.slack.ephemeral_for(ALICE) == [card]
    assert [b.action_id for b in world.slack.buttons(card)] == ["backup_retry"], "only Start over is left"
    [entry] = [r.entry for r in await world.bot.audit.records() if r.entry.kind == AuditKind.EXPIRED]
    assert (entry.user_id, entry.request_id, entry.outcome) == (None, request.request_id, "expired")

    # The late click starts nothing.
    versions = len(card.history)
    assert (await world.slack.send_interactive(world.bot_url, late_click)).status == 200
    await world.slack.wait_until(lambda: len(card.history) > versions, what="the click answered")
    assert "expired" in card.shown
    assert [b.action_id for b in world.slack.buttons(card)] == ["backup_retry"]
    assert world.backups_created() == 0


async def test_an_approval_nobody_gives_expires_and_the_requester_is_told(
    world_factory: WorldFactory,
) -> None:
    world = await world_factory(bot_approval_ttl=TTL)
    card = await world.card('redis-staging rdb "four eyes"', user=BOB)
    await world.click(card, "backup_confirm", user=BOB)
    approval = await world.channel_message(OPS)

    await expired(world)
    await world.slack.wait_until(lambda: "expired" in card.shown, what="the requester's card replaced")

    assert "Nothing was backed up" in card.shown
    # The approval request in the channel is updated in place: its buttons go, and it says why.
    await world.slack.wait_until(lambda: world.slack.buttons(approval) == [], what="approval closed")
    [update] = world.slack.calls("chat.update")
    assert (update.params["channel"], update.params["ts"]) == (OPS, approval.ts)
    assert "expired" in approval.shown and "nobody approved" in approval.shown
    assert len(approval.history) == 1 and approval.text == "The request to back up redis-staging expired."
    # The requester is told in its thread (a mention notifies them, however long ago they asked), with a
    # way to start over.
    [told] = await world.thread_replies(approval.ts)
    assert f"<@{BOB}>" in told.shown and "nobody approved" in told.shown
    assert [(b.action_id, b.label) for b in world.slack.buttons(told)] == [("backup_retry", "Start over")]
    assert world.backups_created() == 0


async def test_finished_requests_and_watch_memory_past_retention_are_pruned(
    world_factory: WorldFactory, stand_ins: StandIns, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=31)
    database = tmp_path / "bot.sqlite3"
    prod = stand_ins.prod
    finished_long_ago = bot_request(prod, state=RequestState.FINISHED, remark="old", backup_id="b-old")
    cancelled_long_ago = make_request(request_id="cancelled-old", instance=prod, now=old)
    finished_lately = bot_request(prod, state=RequestState.FINISHED, remark="new", backup_id="b-new")
    pending_long_ago = make_request(request_id="pending-old", instance=prod, now=old, response_url=None)
    await seed_requests(
        database,
        _aged(finished_long_ago, old),
        _aged(cancelled_long_ago.with_state(RequestState.CANCELLED), old),
        finished_lately,
        pending_long_ago,
    )
    connection = await open_database(database)
    try:
        watch = SqlWatchStore(connection)
        for backup_id, seen_at in (("watched-old", old), ("watched-new", now)):
            await watch.remember(OPS, backup_id, prod.instance_id, "succeed", announced=True, now=seen_at)
    finally:
        await connection.close()

    world = await world_factory(bot_retention_days=30, stand_ins=stand_ins)

    async def pruned() -> bool:
        return await request_in(world, finished_long_ago.request_id) is None

    await until(pruned, "the old finished request to be pruned")
    remaining = {r.request_id: r.state for r in await world.requests()}
    seen = [
        row["backup_id"] for row in await world.bot.database.fetch_all("SELECT backup_id FROM watch_seen")
    ]
    audit = await world.bot.audit.records()

    # An unanswered request is expired, not deleted: it finished only now.
    assert remaining == {
        finished_lately.request_id: RequestState.FINISHED,
        pending_long_ago.request_id: RequestState.EXPIRED,
    }
    assert seen == ["watched-new"]
    # The audit trail is kept: the expiry of the old card is recorded beside everything before it.
    assert [r.entry.request_id for r in audit if r.entry.kind == AuditKind.EXPIRED] == ["pending-old"]


def _aged(request: BackupRequest, at: datetime) -> BackupRequest:
    """``request`` as it would look had it reached its state at ``at``."""
    return request.with_state(
        request.state, created_at=at, expires_at=at + timedelta(minutes=5), updated_at=at, finished_at=at
    )
