"""``/metrics`` holds no token, secret or part of a ``response_url``: every label comes from a fixed set."""

from __future__ import annotations

import re

import aiohttp
import pytest

from bot.standins.faults import Answer, Fault
from tests.e2e.conftest import ALICE, SECRETS, World


async def metrics_text(world: World) -> str:
    async with aiohttp.ClientSession() as session, session.get(world.server.make_url("/metrics")) as response:
        assert response.status == 200
        return await response.text()


def label_values(metrics: str) -> set[str]:
    return set(re.findall(r'="([^"]*)"', metrics))


async def test_a_rate_limited_response_url_post_is_counted_without_its_url(world: World) -> None:
    world.slack.inject(Fault(Answer.ERROR, target="response_url", status=429, retry_after=0))

    await world.command("help")
    await world.reply_to(ALICE)

    [limited, *_] = world.slack.response_posts()
    assert limited.fault is not None and limited.token
    metrics = await metrics_text(world)
    assert 'dcs_bot_slack_rate_limited_total{method="response_url"} 1.0' in metrics
    assert limited.token not in metrics
    assert "/response/" not in metrics and "http" not in "".join(label_values(metrics))


@pytest.mark.parametrize("method", ["usergroups.users.list", "chat.postMessage"])
async def test_a_rate_limited_web_api_call_is_counted_by_its_method(world: World, method: str) -> None:
    world.slack.inject(Fault(Answer.ERROR, target=method, status=429, error="ratelimited", retry_after=0))
    card = await world.card("redis-prod rdb")
    if method == "chat.postMessage":
        await world.click(card, "backup_confirm")
        await world.channel_message()

    metrics = await metrics_text(world)

    assert f'dcs_bot_slack_rate_limited_total{{method="{method}"}} 1.0' in metrics


async def test_no_label_holds_a_secret_after_a_busy_session(world: World) -> None:
    world.slack.inject(Fault(Answer.ERROR, target="response_url", status=429, retry_after=0, times=2))
    world.dcs.inject(Fault(Answer.ERROR, target="list_instances", status=503))
    card = await world.card("redis-prod rdb")
    await world.click(card, "backup_confirm")
    await world.channel_message()
    await world.command("nonsense with a https://hooks.slack.com/commands/T1/2/s3cr3t URL")

    metrics = await metrics_text(world)

    tokens = {post.token for post in world.slack.response_posts()}
    for secret in (*SECRETS, *tokens, "s3cr3t", "hooks.slack.com"):
        assert secret not in metrics
