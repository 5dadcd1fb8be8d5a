"""Where the bot may not post (a private channel it was not invited to), results still arrive: through the
click's response_url, visible to the whole channel."""

from __future__ import annotations

from tests.e2e.conftest import ALICE, BOB, LEAD, PRIVATE, World


async def test_the_backup_id_arrives_through_the_response_url_in_channel(world: World) -> None:
    card = await world.card('redis-prod rdb "from the private channel"', channel=PRIVATE)

    await world.click(card, "backup_confirm")
    posted = await world.channel_message(PRIVATE)

    [attempt] = world.slack.calls("chat.postMessage")
    assert attempt.reply.body == {"ok": False, "error": "not_in_channel"}
    assert posted.source == "response_url" and not posted.is_ephemeral
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    assert backup.backup_id in posted.shown and f"<@{ALICE}>" in posted.shown
    assert world.slack.buttons(card) == [] and "Confirmed" in card.shown
    [fallback] = [p for p in world.slack.response_posts() if p.message is posted]
    assert fallback.body["response_type"] == "in_channel"
    assert fallback.response_url is not None and fallback.response_url.message is card


async def test_an_api_error_also_arrives_through_the_response_url(world: World) -> None:
    world.dcs.add_backup(world.prod.instance_id, backuping_seconds=3600)
    card = await world.card("redis-prod rdb", channel=PRIVATE)

    await world.click(card, "backup_confirm")
    posted = await world.channel_message(PRIVATE)

    assert "`DCS.4096`" in posted.shown and not posted.is_ephemeral


async def test_a_peer_approval_works_in_a_channel_the_bot_is_not_in(world: World) -> None:
    card = await world.card("redis-staging rdb", user=BOB, channel=PRIVATE)
    await world.click(card, "backup_confirm", user=BOB)
    request = await world.channel_message(PRIVATE)
    assert {b.action_id for b in world.slack.buttons(request)} == {"backup_approve", "backup_reject"}

    await world.click(request, "backup_approve", user=LEAD)
    started = await world.channel_message(PRIVATE, 2)

    assert f"<@{BOB}>" in started.shown and f"<@{LEAD}>" in started.shown
    assert world.dcs.backups_of(world.staging.instance_id)[0].backup_id in started.shown
    assert world.slack.buttons(request) == []
