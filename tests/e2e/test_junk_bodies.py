"""A request to /slack/events is verified on its raw bytes before anything parses it: unsigned or badly
signed junk is 401, signed junk that cannot be parsed is 400, and neither leaves a traceback in the log."""

from __future__ import annotations

import pytest

from bot.standins.slack.delivery import post_raw
from bot.standins.slack.payloads import signed_headers
from tests.e2e.conftest import ALICE, SIGNING_SECRET, World

JUNK = {
    "invalid-utf8": b"\xff\xfe\xfa command=/dcs-backup",
    "invalid-utf8-in-a-form": b"command=%2Fdcs-backup&text=\xc3\x28&user_id=UALICE1",
    "payload-not-json": b"payload=%7Bnot",
    "payload-a-json-list": b"payload=%5B1%2C2%5D",
    "payload-a-json-string": b"payload=%22hello%22",
    "payload-empty": b"payload=",
    "payload-twice-the-second-bad": b"payload=%7B%7D&payload=%7Bnot",
    # A JSON object, but not of a shape Bolt can build its context from.
    "json-odd-shape": b'{"team": 7, "view": []}',
    "json-not-json": b"{not json",
    "json-a-list": b"[1, 2]",
    "a-form-brace-first": b"{oops=1&command=%2Fdcs-backup",
    "not-a-form": b"just some text",
    "a-form-with-a-bare-word": b"command=%2Fdcs-backup&oops&text=x",
}
JSON_BODIES = {"json-not-json", "json-a-list", "json-odd-shape"}


def content_type(name: str) -> str:
    return "application/json" if name in JSON_BODIES else "application/x-www-form-urlencoded"


def assert_quiet(world: World) -> None:
    log = world.log.getvalue()
    assert "Traceback" not in log, log
    assert "Error handling request" not in log, log


async def assert_nothing_happened(world: World) -> None:
    assert world.dcs.calls == []
    assert world.slack.messages() == []
    assert world.slack.response_posts() == []
    assert await world.bot.audit.records() == []


@pytest.mark.parametrize("name", JUNK)
async def test_unsigned_junk_is_401(world: World, name: str) -> None:
    headers = {"content-type": content_type(name)}

    reply = await post_raw(world.bot_url, JUNK[name], headers)

    assert reply.status == 401, reply.body
    assert_quiet(world)
    await assert_nothing_happened(world)


@pytest.mark.parametrize("name", JUNK)
async def test_badly_signed_junk_is_401(world: World, name: str) -> None:
    headers = signed_headers(JUNK[name], secret="not-the-secret", content_type=content_type(name))

    reply = await post_raw(world.bot_url, JUNK[name], headers)

    assert reply.status == 401, reply.body
    assert_quiet(world)
    await assert_nothing_happened(world)


@pytest.mark.parametrize("name", JUNK)
async def test_signed_junk_that_cannot_be_parsed_is_400(world: World, name: str) -> None:
    headers = signed_headers(JUNK[name], secret=SIGNING_SECRET, content_type=content_type(name))

    reply = await post_raw(world.bot_url, JUNK[name], headers)

    assert reply.status == 400, reply.body
    assert_quiet(world)
    await assert_nothing_happened(world)
    log = world.log.getvalue()
    assert "refused a signed request to /slack/events: " in log
    assert JUNK[name].decode(errors="replace") not in log, "the body stays out of the log"


@pytest.mark.parametrize("timestamp", ["soon", "1e3", "", "99999999999999999999999"])
async def test_a_timestamp_that_is_no_number_is_401(world: World, timestamp: str) -> None:
    body = world.raw_command("redis-prod rdb")
    headers = signed_headers(body, secret=SIGNING_SECRET) | {"x-slack-request-timestamp": timestamp}

    reply = await post_raw(world.bot_url, body, headers)

    assert reply.status == 401, reply.body
    assert_quiet(world)
    await assert_nothing_happened(world)


async def test_the_bot_still_answers_after_junk(world: World) -> None:
    for body in JUNK.values():
        await post_raw(world.bot_url, body, signed_headers(body, secret=SIGNING_SECRET))

    card = await world.card("redis-prod rdb")

    assert world.slack.buttons(card)
    assert (await world.reply_to(ALICE)).is_ephemeral


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"token=x&team_id=T1", id="a-form-no-listener-wants"),
    ],
)
async def test_a_signed_well_formed_body_no_listener_wants_is_not_a_crash(world: World, body: bytes) -> None:
    reply = await post_raw(world.bot_url, body, signed_headers(body, secret=SIGNING_SECRET))

    assert reply.status < 500, reply.body
    assert_quiet(world)
