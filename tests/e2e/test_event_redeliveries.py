"""An Events API event that Slack delivers twice over HTTP (the second time with ``X-Slack-Retry-Num``),
signed as Slack signs it, is acknowledged both times and handled once."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import generate_latest

from bot.standins.slack.delivery import post_raw
from bot.standins.slack.payloads import signed_headers
from tests.e2e.conftest import ALICE, OPS, SIGNING_SECRET, World, WorldFactory
from tests.fakes import FakeEventDeliveries

EVENT = {
    "token": "x",
    "team_id": "T0DEMO",
    "api_app_id": "A0DCSBACKUP",
    "type": "event_callback",
    "event_id": "Ev0E2EDEDUP",
    "event_time": 1_764_600_000,
    "event": {"type": "app_mention", "user": ALICE, "text": "<@UBOT> hi", "channel": OPS, "ts": "1.2"},
    "authorizations": [{"team_id": "T0DEMO", "user_id": "UBOT", "is_bot": True}],
}


async def deliver_twice(world: World) -> tuple[list[str], tuple[int, int]]:
    """Delivers EVENT, then delivers it again as Slack's retry; what a test listener heard, the statuses."""
    heard: list[str] = []

    async def on_mention(body: dict[str, Any]) -> None:
        heard.append(body["event_id"])

    # A listener of this test only: the bot itself subscribes to no event yet.
    world.bot.bolt.event("app_mention")(on_mention)
    body = json.dumps(EVENT)

    first = await post_raw(
        world.bot_url, body, signed_headers(body, secret=SIGNING_SECRET, content_type="application/json")
    )
    retry = signed_headers(body, secret=SIGNING_SECRET, content_type="application/json")
    again = await post_raw(
        world.bot_url, body, retry | {"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"}
    )

    return heard, (first.status, again.status)


async def test_a_redelivered_event_is_acked_and_handled_once(world_factory: WorldFactory) -> None:
    deliveries = FakeEventDeliveries()
    world = await world_factory(event_deliveries=deliveries)

    heard, statuses = await deliver_twice(world)

    assert statuses == (200, 200)
    assert heard == ["Ev0E2EDEDUP"]
    assert [event_id for event_id, _ in deliveries.asked] == ["Ev0E2EDEDUP", "Ev0E2EDEDUP"]
    assert list(deliveries.first_seen) == ["Ev0E2EDEDUP"]
    assert "dcs_bot_event_redeliveries_total 1.0" in generate_latest(world.bot.metrics.registry).decode()


async def test_the_bot_remembers_deliveries_in_its_database(world_factory: WorldFactory) -> None:
    world = await world_factory()

    heard, statuses = await deliver_twice(world)

    assert statuses == (200, 200)
    assert heard == ["Ev0E2EDEDUP"]
    assert not await world.bot.event_deliveries.first_delivery("Ev0E2EDEDUP", world.bot.clock.now())
