"""Every kind of bad input of INTERFACE §2, through the real bot: a clear ephemeral answer, no change."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ALICE, OPS, World


async def assert_nothing_changed(world: World) -> None:
    assert world.backups_created() == 0
    assert world.slack.channel_messages(OPS) == []
    assert await world.requests() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis-prod zip", '"zip" is not a backup format. Use aof or rdb'),
        (f'redis-prod rdb "{"x" * 129}"', "The remark is 129 characters long; the limit is 128"),
        ("redis-prod rdb " + "y" * 129, "The remark is 129 characters long; the limit is 128"),
        (f'redis-prod rdb "{"&" * 129}"', "The remark is 129 characters long"),
        ('redis-prod rdb "never closed', 'opening quote " is never closed'),
        ("redis-prod rdb “never closed", "opening quote “ is never closed"),
        ('redis-prod "remark first" aof', "Please put the format before the remark"),
        ("redis/prod/x", '"redis/prod/x" is not an instance'),
        ("eu_nl/redis-prod", '"eu_nl" is not a cloud name'),
        ("x" * 65, "too long for an instance name"),
        ('"redis-prod"', "Please write the instance without quotes"),
        ("list", "Which instance's backups should I list?"),
        ("list list", '"list" is a command word, so an instance with that name has to be given by its ID'),
        ("list status", '"status" is a command word'),
        ("list redis-prod extra words", 'I didn\'t expect "extra words" after the instance'),
        ("list redis-prod --dry-run", "--dry-run only works for backups, not for list"),
        ("status", "Which backup? Please give its ID."),
        ("status redis-prod", '"redis-prod" is not a backup ID'),
        ("status --dry-run", "--dry-run only works for backups, not for status"),
        ("redis-prod --force", '"--force" is not an option I know; the only one is --dry-run'),
        ("redis-prod rdb —force now", '"—force" is not an option I know'),
        ("--dry-run redis-prod", "Please put --dry-run after the instance, not before it"),
        ("redis-prod rdb nightly --dry-run run", "--dry-run goes at the end of the command"),
        ('redis-prod rdb "remark" trailing', 'I didn\'t expect "trailing" after the quoted remark'),
    ],
)
async def test_bad_command_text_is_explained_in_the_ack(world: World, text: str, expected: str) -> None:
    result = await world.command(text)

    assert result.status == 200
    assert result.message is not None, "a usage error is answered in the ack itself"
    assert result.message.visible_to == ALICE
    assert expected in result.message.shown
    assert "Usage" in result.message.shown or "/dcs-backup" in result.message.shown
    assert world.dcs.calls == []
    await assert_nothing_changed(world)


async def test_html_in_bad_input_is_echoed_escaped(world: World) -> None:
    result = await world.command("<!channel>&<@U0BOSS>")

    assert result.message is not None
    assert "&lt;!channel&gt;&amp;&lt;@U0BOSS&gt;" in result.message.shown
    assert "<!channel>" not in result.body and "<@U0BOSS>" not in result.body
    await assert_nothing_changed(world)


@pytest.mark.parametrize("text", ["help", "HELP me please"])
async def test_help_answers_with_usage_and_permissions(world: World, text: str) -> None:
    result = await world.command(text)
    assert result.status == 200
    reply = await world.reply_to(ALICE)

    assert reply.is_ephemeral
    shown = str(reply.blocks)
    assert "/dcs-backup &lt;instance&gt; [aof|rdb]" in shown
    assert "sre-prod" in shown
    assert world.dcs.calls == []
    await assert_nothing_changed(world)


async def test_an_ambiguous_name_lists_the_candidates_by_id_and_never_guesses(world: World) -> None:
    twin = world.dcs.add_instance("redis-prod", cache_mode="cluster")

    await world.command("redis-prod rdb")
    reply = await world.reply_to(ALICE)

    assert "Several instances are named *redis-prod*" in reply.shown
    assert world.prod.instance_id in reply.shown and twin.instance_id in reply.shown
    picks = world.slack.buttons(reply)
    assert [(b.action_id, b.value) for b in picks] == [
        ("backup_pick", world.prod.instance_id),
        ("backup_pick", twin.instance_id),
    ], "a pick names the instance by its ID, never by the ambiguous name"
    await assert_nothing_changed(world)

    card = await world.card(f"{twin.instance_id} rdb")
    assert twin.instance_id in str(card.blocks)


async def test_an_unknown_name_gets_suggestions(world: World) -> None:
    await world.command("redis-prd rdb")
    reply = await world.reply_to(ALICE)

    assert "could not find a DCS instance named *redis-prd*" in reply.shown
    assert "Did you mean" in reply.shown and "*redis-prod*" in reply.shown
    await assert_nothing_changed(world)


async def test_an_unknown_instance_id_is_not_found(world: World) -> None:
    await world.command("8a5f9c2e-3b4d-4e6f-9a1b-2c3d4e5f6a7b")
    reply = await world.reply_to(ALICE)

    assert "could not find a DCS instance with ID" in reply.shown
    await assert_nothing_changed(world)


async def test_a_single_node_instance_is_refused_with_a_reason_before_any_backup_call(world: World) -> None:
    await world.command("cache-single rdb")
    reply = await world.reply_to(ALICE)

    assert "cache-single" in reply.shown and "cannot be backed up" in reply.shown
    assert "Single-node" in reply.shown
    assert world.slack.buttons(reply) == []
    await assert_nothing_changed(world)


async def test_an_instance_that_is_not_running_is_refused(world: World) -> None:
    world.dcs.set_status(world.prod.instance_id, "RESTARTING")

    await world.command("redis-prod rdb")
    reply = await world.reply_to(ALICE)

    assert "RESTARTING" in reply.shown and "RUNNING" in reply.shown
    assert world.slack.buttons(reply) == []
    await assert_nothing_changed(world)


@pytest.mark.parametrize(
    "text",
    [
        "redis-prod rdb 🚀 launch day",
        'redis-prod rdb "line one\nline two"',
        "redis-prod\trdb\u00a0tabs and nbsp",
        "redis-prod rdb 100% done; a=b&c=d?e#f",
        "redis-prod rdb \\ backslash \\n",
        "%",
        "&",
        "=",
        "+",
        '"',
        "“",
        "—dry-run",
        "redis-prod " + "ü" * 3000,
    ],
)
async def test_any_text_reaches_the_handler_and_gets_an_answer(world: World, text: str) -> None:
    result = await world.command(text)

    assert result.status == 200 and result.reply.error is None
    answer = result.message or await world.reply_to(ALICE)
    assert answer.visible_to == ALICE and answer.shown
