"""Events API deduplication on its own: the first delivery of an event id goes on to the listeners, a
redelivery of it is acknowledged and goes no further; other requests are not asked about."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.slack.middleware.event_deduplication import EventDeduplication, event_id_of
from tests.fakes import FakeClock, FakeEventDeliveries
from tests.slack.test_shutdown_gate import CLICK, COMMAND, FakeAck, FakeNext


def event(event_id: str = "Ev0DEDUP1") -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": "T1",
        "api_app_id": "A1",
        "event_id": event_id,
        "event_time": 1_764_600_000,
        "event": {"type": "app_mention", "user": "UALICE1", "text": "hi", "channel": "COPS1", "ts": "1.2"},
    }


class Redeliveries:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


class Harness:
    def __init__(self) -> None:
        self.deliveries = FakeEventDeliveries()
        self.clock = FakeClock()
        self.redeliveries = Redeliveries()
        self.middleware = EventDeduplication(self.deliveries, self.clock.now, self.redeliveries)

    async def deliver(
        self, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[BoltResponse | None, FakeAck, FakeNext]:
        ack, next_ = FakeAck(), FakeNext()
        request = AsyncBoltRequest(
            body=body, mode="socket_mode", headers=dict(headers or {}), context={"ack": ack}
        )
        response = await self.middleware.async_process(req=request, resp=BoltResponse(status=200), next=next_)
        return response, ack, next_


@pytest.fixture
def harness() -> Harness:
    return Harness()


async def test_the_first_delivery_goes_on_and_is_recorded_with_the_time(harness: Harness) -> None:
    response, ack, next_ = await harness.deliver(event())

    assert next_.called and response is next_.response
    assert ack.texts == []
    assert harness.deliveries.first_seen == {"Ev0DEDUP1": harness.clock.now()}
    assert harness.redeliveries.count == 0


async def test_a_redelivery_is_acked_and_reaches_no_listener(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.deliver(event())
    caplog.set_level(logging.DEBUG, logger="bot.slack.middleware.event_deduplication")

    response, ack, next_ = await harness.deliver(
        event(), {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )

    assert not next_.called
    assert ack.texts == [""]
    assert response is not None and (response.status, response.body) == (200, "")
    assert harness.redeliveries.count == 1
    assert "event Ev0DEDUP1 delivered again (retry 1, http_timeout)" in caplog.text


async def test_the_event_id_decides_not_the_retry_headers(harness: Harness) -> None:
    # A redelivery without retry headers (as over Socket Mode) is still one; a new id with them is new.
    await harness.deliver(event("Ev1"))

    _, _, again = await harness.deliver(event("Ev1"))
    _, _, other = await harness.deliver(event("Ev2"), {"X-Slack-Retry-Num": "2"})

    assert not again.called and other.called
    assert set(harness.deliveries.first_seen) == {"Ev1", "Ev2"}
    assert harness.redeliveries.count == 1


async def test_commands_clicks_and_other_bodies_are_not_asked_about(harness: Harness) -> None:
    verification = {"type": "url_verification", "challenge": "c"}
    without_id = {key: value for key, value in event().items() if key != "event_id"}
    for body in (COMMAND, CLICK, verification, without_id, event(""), {**event(), "event_id": 7}):
        response, ack, next_ = await harness.deliver(body)
        assert next_.called and response is next_.response and ack.texts == []

    assert harness.deliveries.asked == []


def test_event_id_of_reads_only_event_callbacks() -> None:
    assert event_id_of(event("Ev9")) == "Ev9"
    assert event_id_of({**event("Ev9"), "type": "app_rate_limited"}) is None
    assert event_id_of("type=event_callback") is None


async def test_when_the_store_cannot_answer_the_event_is_handled(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.deliveries.fails = ConnectionResetError("database gone")

    response, ack, next_ = await harness.deliver(event())

    assert next_.called and response is next_.response and ack.texts == []
    assert "could not tell whether event Ev0DEDUP1 was delivered before (ConnectionResetError)" in caplog.text
    assert "database gone" not in caplog.text and "Traceback" not in caplog.text


async def test_in_a_bolt_app_a_listener_hears_an_event_once() -> None:
    async def authorize(**_: Any) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=None, team_id="T1", bot_token="xoxb-dedup", bot_user_id="UBOT")

    deliveries = FakeEventDeliveries()
    app = AsyncApp(signing_secret="unused", request_verification_enabled=False, authorize=authorize)
    app.use(EventDeduplication(deliveries, lambda: datetime(2026, 12, 2, tzinfo=UTC)))
    heard: list[str] = []

    async def on_mention(body: dict[str, Any]) -> None:
        heard.append(body["event_id"])

    app.event("app_mention")(on_mention)

    first = await app.async_dispatch(AsyncBoltRequest(body=event(), mode="socket_mode"))
    again = await app.async_dispatch(AsyncBoltRequest(body=event(), mode="socket_mode"))

    assert (first.status, again.status) == (200, 200)
    assert heard == ["Ev0DEDUP1"]
