"""Nothing a person types can mention anyone through the bot, and no secret leaves the bot."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bot.logs import REDACTED
from bot.standins.slack.delivery import post_raw
from tests.e2e.conftest import ALICE, BOB, LEAD, OPS, PRIVATE, SECRETS, World, earlier_versions

TYPED_REMARK = "<!channel> @here <@U0BOSS> &amp;"
MENTIONS = ("<!channel>", "<!here>", "<!everyone>", "<@U0BOSS", "<!subteam^SBOSS")


def assert_no_mentions(world: World) -> None:
    sent = world.sent_by_bot()
    for mention in MENTIONS:
        assert mention not in sent, f"the bot sent {mention!r}"
    for call in world.slack.calls("chat.postMessage"):
        assert not call.params.get("link_names"), "link_names would turn a plain @here into a mention"


async def test_a_remark_cannot_mention_anyone_in_any_echo(world: World) -> None:
    await world.command(f'redis-prod aof "{TYPED_REMARK}" --dry-run')
    dry_run = await world.reply_to(ALICE)
    card = await world.card(f'redis-prod aof "{TYPED_REMARK}"')
    await world.click(card, "backup_confirm")
    started = await world.channel_message(OPS)

    approval_card = await world.card(f'redis-staging "{TYPED_REMARK}"', user=BOB)
    await world.click(approval_card, "backup_confirm", user=BOB)
    approval = await world.channel_message(OPS, 2)
    await world.click(approval, "backup_approve", user=LEAD)
    await world.channel_message(OPS, 3)

    escaped = "&lt;!channel&gt; @here &lt;@U0BOSS&gt; &amp;amp;"
    assert escaped in json.dumps(dry_run.blocks)
    for replaced in (card, approval):
        assert escaped in json.dumps(earlier_versions(replaced)[0].blocks)
    assert escaped in json.dumps(started.blocks)
    assert_no_mentions(world)
    remarks = {b.remark for i in (world.prod, world.staging) for b in world.dcs.backups_of(i.instance_id)}
    assert remarks == {TYPED_REMARK}, "DCS receives the remark exactly as typed"


async def test_mention_markup_sent_by_slack_itself_is_escaped_too(world: World) -> None:
    # When a person picks @channel or a user from the autocomplete, Slack sends the markup unescaped.
    body = world.raw_command('redis-prod rdb "<!channel> <@U0BOSS|boss> <!subteam^SBOSS|@bosses>"')
    assert (await post_raw(world.bot_url, body, world.slack.signed_headers(body))).status == 200
    card = await world.reply_to(ALICE)
    await world.click(card, "backup_confirm")
    await world.channel_message(OPS)

    assert_no_mentions(world)
    assert "&lt;!channel&gt;" in world.sent_by_bot()


async def test_usage_errors_and_refusals_cannot_mention_anyone(world: World) -> None:
    await world.command("<!here> rdb")
    await world.command('redis-prod rdb "<!channel>', user=BOB)
    await world.command(f'redis-prod rdb "{TYPED_REMARK}"', user="USTRANGER1")
    await world.reply_to("USTRANGER1")

    assert_no_mentions(world)


async def test_no_secret_reaches_the_logs_the_messages_or_the_database(world: World) -> None:
    card = await world.card('redis-prod aof "secret-free"')
    await world.click(card, "backup_confirm")
    await world.channel_message(OPS)
    world.dcs.inject_fault(endpoint="create_backup", status=500)
    card = await world.card("redis-staging rdb")
    await world.click(card, "backup_confirm")
    await world.channel_message(OPS, 2)
    # redis-staging's outcome is being checked: another of its backups would have to wait.
    card = await world.card("redis-prod rdb", channel=PRIVATE)
    await world.click(card, "backup_confirm")
    await world.channel_message(PRIVATE)
    world.dcs.inject_fault(endpoint="list_instances", status=503)
    await world.command("redis-prod")
    await world.reply_to(ALICE, 4)
    await world.command("redis-prod --verbose")
    forged = "token=x&text=redis-prod"
    await post_raw(
        world.bot_url, forged, world.slack.signed_headers(forged, timestamp=int(time.time()) - 999)
    )

    log = world.log.getvalue()
    assert "POST /slack/events" in log and "not_in_channel" in log, "the log was captured"
    database = world.bot.settings.bot_database
    assert isinstance(database, Path)
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    for secret in SECRETS:
        assert secret not in log
        assert secret not in world.sent_by_bot()
        assert secret.encode() not in stored
    assert REDACTED not in log, "nothing even tried to log a secret"
