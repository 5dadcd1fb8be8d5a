"""The Home tab in Socket Mode: ``app_home_opened`` arrives as an ``events_api`` envelope, is acked over
the socket, and publishes the person's view."""

from __future__ import annotations

from bot.standins.slack.timeline import find_buttons
from tests.e2e.conftest import ALICE
from tests.service.conftest import ServiceFactory


async def test_the_home_tab_opens_over_the_socket(service_factory: ServiceFactory) -> None:
    service = await service_factory(socket_mode=True)
    await service.slack.wait_for_socket()

    reply = await service.slack.open_home(service.target, user_id=ALICE)
    await service.slack.wait_until(lambda: bool(service.slack.home_views(ALICE)), what="Alice's Home tab")

    assert reply.status == 200
    [envelope] = service.slack.socket.envelopes
    assert envelope.type == "events_api" and envelope.acked and not envelope.accepts_response_payload
    assert envelope.payload["event"]["type"] == "app_home_opened"
    [view] = service.slack.home_views(ALICE)
    assert service.prod.instance_id in str(view["blocks"])
    assert "backup_new" in {b.action_id for b in find_buttons(view["blocks"])}
