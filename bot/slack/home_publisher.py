"""Publishes a person's Home tab (``views.publish``); whatever Slack answers, it raises nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.rules.home import HomeSnapshot
from bot.slack.errors import SlackCallError, call_slack
from bot.slack.home_view import home_view

log = logging.getLogger(__name__)


class SlackHomePublisher:
    def __init__(self, client: AsyncWebClient, on_error: Callable[[str, str], None] | None = None) -> None:
        """``on_error(method, error)`` hears of every Slack API error (for metrics)."""
        self._client = client
        self._on_error = on_error

    async def publish(self, user_id: str, home: HomeSnapshot) -> bool:
        try:
            await call_slack(
                "views.publish",
                self._client.views_publish(user_id=user_id, view=home_view(home)),
                timeout=self._client.timeout,
            )
        except SlackCallError as error:
            if self._on_error is not None:
                self._on_error("views.publish", error.failure.reason)
            log.warning("could not publish the Home tab of %s: %s", user_id, error.failure)
            return False
        return True
