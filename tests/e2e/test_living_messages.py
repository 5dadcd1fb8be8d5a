"""Issue 12, living messages, over HTTP: the channel message of a backup is updated in place
(``chat.update``) from waiting through running to its end, the outcome still goes to the thread (a failure
also broadcast), the confirmation card ends in its final state, progress updates are coalesced to about
one per second, and updates Slack refuses break neither the flow nor the outcome notice."""

from __future__ import annotations

import itertools
import time

from bot.standins.dcs.control import ManualClock
from bot.standins.slack.timeline import Content, Message, shown_text
from tests.e2e.conftest import OPS, StandInsFactory, World, WorldFactory


async def started_backup(world: World, text: str = 'redis-prod rdb "living"') -> tuple[Message, Message]:
    """Confirms a backup; its card and its channel message."""
    card = await world.card(text)
    assert await world.click(card, "backup_confirm") == 200
    return card, await world.channel_message(OPS)


def versions(message: Message) -> list[Content]:
    return [*message.history, message.content]


async def ended(world: World, message: Message, word: str) -> None:
    await world.slack.wait_until(lambda: word in message.shown, what=f"the channel message saying {word}")


def updates_of(world: World, message: Message) -> list[dict[str, object]]:
    return [
        call.params
        for call in world.slack.calls("chat.update")
        if call.params.get("ts") == message.ts and call.params.get("channel") == OPS
    ]


async def test_the_channel_message_goes_from_waiting_to_succeeded_and_the_card_says_started(
    world: World,
) -> None:
    card, posted = await started_backup(world)
    [outcome] = await world.thread_replies(posted.ts)
    await ended(world, posted, "*Succeeded*")

    [backup] = world.dcs.backups_of(world.prod.instance_id)
    shown = [shown_text(version) for version in versions(posted)]
    assert "*Waiting* to start" in shown[0]
    assert "*Succeeded*" in shown[-1] and " MiB" in shown[-1]
    assert all(f"backup_id `{backup.backup_id}`" in version for version in shown)
    # Every version was sent by chat.update on the message itself; none repeats the one before.
    assert len(updates_of(world, posted)) == len(posted.history) >= 1
    assert all(a != b for a, b in itertools.pairwise(shown))
    assert posted.text == "The backup of redis-prod succeeded."
    # The outcome is still told in the thread, and not broadcast.
    assert "succeeded" in outcome.shown and not outcome.broadcast
    # The card reached its final state through the click's response_url (replace_original).
    assert "Started" in card.shown and f"backup_id `{backup.backup_id}`" in card.shown
    assert any("Confirmed by" in shown_text(old) for old in card.history)
    assert world.slack.buttons(card) == []
    replaced = [
        p for p in world.slack.response_posts() if p.message is card and p.body.get("replace_original")
    ]
    assert len(replaced) == 3, "replaced by the card (the 'Looking up' ack), on the click, when DCS answered"


async def test_a_failed_backup_ends_as_failed_with_its_code_broadcast_and_a_way_to_try_again(
    world: World,
) -> None:
    world.dcs.fail_next_backup(world.prod.instance_id, "dcs.08.0002")
    card, posted = await started_backup(world)
    [outcome] = await world.thread_replies(posted.ts)
    await ended(world, posted, "*Failed*")

    assert "`dcs.08.0002` — the backup timed out" in posted.shown
    assert posted.text == "The backup of redis-prod failed."
    assert outcome.broadcast, "a failure is also shown in the channel"
    [broadcast] = [c for c in world.slack.calls("chat.postMessage") if c.params.get("thread_ts") == posted.ts]
    assert broadcast.params.get("reply_broadcast") is True
    assert [b.action_id for b in world.slack.buttons(outcome)] == ["backup_retry"]
    assert "Started" in card.shown, "the card tells what DCS did: the backup started (and then failed)"


async def test_progress_updates_are_coalesced_to_about_one_a_second_per_channel(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory
) -> None:
    clock = ManualClock()
    stand_ins = await stand_ins_factory(dcs_clock=clock)
    stand_ins.dcs.waiting_seconds, stand_ins.dcs.backuping_seconds = 1.0, 100.0
    world = await world_factory(stand_ins=stand_ins)
    _, posted = await started_backup(world)
    began = time.monotonic()
    clock.advance(1)
    # Forty polls, each seeing a new progress (2.5 % further) within a second or two of real time.
    for _ in range(40):
        clock.advance(2.5)
        await world.more_polls(world.prod, 1)
    spent = time.monotonic() - began
    clock.advance(10)
    await ended(world, posted, "*Succeeded*")

    running = [v for v in versions(posted) if "*Running*" in shown_text(v)]
    assert running, "progress was shown"
    # At most one update per second of the run (plus the first and the end), far fewer than the polls.
    assert len(updates_of(world, posted)) <= spent + 3
    assert len(running) < 40


async def test_a_rate_limited_update_waits_its_turn_and_the_outcome_still_arrives(world: World) -> None:
    world.slack.fail("chat.update", "ratelimited", retry_after=1, times=2)
    _, posted = await started_backup(world)

    [outcome] = await world.thread_replies(posted.ts)
    await ended(world, posted, "*Succeeded*")

    assert "succeeded" in outcome.shown
    refused = [c for c in world.slack.calls("chat.update") if c.reply.status == 429]
    assert len(refused) == 2


async def test_a_deleted_channel_message_gets_the_outcome_in_the_channel_instead(
    stand_ins_factory: StandInsFactory, world_factory: WorldFactory
) -> None:
    clock = ManualClock()
    stand_ins = await stand_ins_factory(dcs_clock=clock)
    stand_ins.dcs.waiting_seconds, stand_ins.dcs.backuping_seconds = 1.0, 60.0
    world = await world_factory(stand_ins=stand_ins)
    _, posted = await started_backup(world)
    world.slack.timeline.delete(posted)

    clock.advance(30)
    await world.slack.wait_until(
        lambda: any(
            c.reply.body.get("error") == "message_not_found" for c in world.slack.calls("chat.update")
        ),
        what="an update Slack refuses",
    )
    clock.advance(60)
    outcome = await world.channel_message(OPS)

    assert "succeeded" in outcome.shown and outcome.thread_ts is None
    assert len([c for c in world.slack.calls("chat.update") if c.params.get("ts") == posted.ts]) == 1
