"""Requests not signed by Slack with the app's secret, or replayed too late, are answered 401 and ignored."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.standins.slack.delivery import Inbound, PayloadKind, post_raw
from tests.e2e.conftest import ALICE, OPS, SIGNING_SECRET, World, earlier_versions

STALE = 301


def forged_headers(world: World, body: str, how: str) -> dict[str, str]:
    if how == "wrong secret":
        return world.slack.signed_headers(body, secret="not-the-signing-secret")
    if how == "stale timestamp":
        return world.slack.signed_headers(body, timestamp=int(time.time()) - STALE)
    if how == "future timestamp":
        return world.slack.signed_headers(body, timestamp=int(time.time()) + STALE)
    if how == "signature of another body":
        return world.slack.signed_headers(body + "&text=other")
    headers = world.slack.signed_headers(body)
    del headers["x-slack-signature"]
    return headers


FORGERIES = ["wrong secret", "stale timestamp", "future timestamp", "signature of another body", "unsigned"]


async def assert_nothing_happened(world: World) -> None:
    assert world.dcs.calls == []
    assert world.slack.messages() == []
    assert world.slack.response_posts() == []
    assert await world.bot.audit.records() == []
    assert await world.requests() == []


def is_valid(body: str, headers: dict[str, str]) -> bool:
    return SignatureVerifier(SIGNING_SECRET).is_valid(
        body=body,
        timestamp=headers.get("x-slack-request-timestamp", ""),
        signature=headers.get("x-slack-signature", ""),
    )


@pytest.mark.parametrize("how", FORGERIES)
async def test_a_forged_command_is_answered_401_and_changes_nothing(world: World, how: str) -> None:
    body = world.raw_command("redis-prod rdb")
    headers = forged_headers(world, body, how)
    assert not is_valid(body, headers), "the reference verifier rejects it too"

    reply = await post_raw(world.bot_url, body, headers)

    assert reply.status == 401
    await assert_nothing_happened(world)


@pytest.mark.parametrize("how", FORGERIES)
async def test_a_forged_click_is_answered_401_and_the_card_stays(world: World, how: str) -> None:
    card = await world.card("redis-prod rdb")
    audit_before = await world.bot.audit.records()
    payload, _ = world.slack.build_click(user_id=ALICE, message=card, action_id="backup_confirm")
    body = Inbound(PayloadKind.INTERACTIVE, payload).http_body()
    headers = forged_headers(world, body, how)

    reply = await post_raw(world.bot_url, body, headers)

    assert reply.status == 401
    assert world.slack.buttons(card) and earlier_versions(card) == []
    assert world.backups_created() == 0
    assert await world.bot.audit.records() == audit_before

    assert await world.click(card, "backup_confirm") == 200
    await world.channel_message(OPS)
    assert world.backups_created() == 1


async def test_what_the_stand_in_signs_is_valid_for_slack_sdk_and_plain_hmac(world: World) -> None:
    body = world.raw_command('redis-prod aof "signed & sealed"')
    headers = world.slack.signed_headers(body)
    timestamp = headers["x-slack-request-timestamp"]
    expected = hmac.new(SIGNING_SECRET.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)

    assert headers["x-slack-signature"] == "v0=" + expected.hexdigest()
    assert is_valid(body, headers)

    reply = await post_raw(world.bot_url, body, headers)
    assert reply.status == 200
    await world.reply_to(ALICE)


async def test_a_request_signed_just_inside_the_replay_window_is_accepted(world: World) -> None:
    body = world.raw_command("redis-prod rdb")
    headers = world.slack.signed_headers(body, timestamp=int(time.time()) - 240)

    reply = await post_raw(world.bot_url, body, headers)

    assert reply.status == 200
    card = await world.reply_to(ALICE)
    assert world.slack.buttons(card)
