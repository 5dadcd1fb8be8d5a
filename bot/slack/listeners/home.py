"""The Home tab: ``app_home_opened`` (Events API) publishes the person's view.

Bolt acknowledges an event itself; the publish runs in the background (:class:`HomeRefresh`), so the
acknowledgement goes out at once. A delivery Slack repeats never reaches this listener
(bot/slack/middleware/event_deduplication.py). The Home tab's ``backup_new`` button is the backup form's
(bot/slack/listeners/form.py opens the modal).
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.runner import Runner


def register(app: AsyncApp, runner: Runner) -> None:
    async def on_app_home_opened(event: dict[str, Any]) -> None:
        user_id = opener_of(event)
        if user_id is not None:
            runner.home_opened(user_id)

    app.event("app_home_opened")(on_app_home_opened)


def opener_of(event: object) -> str | None:
    """Who opened their Home tab, or None for another tab (Messages, About) or an event Slack would not
    send."""
    if not isinstance(event, dict) or event.get("tab") != "home":
        return None
    user_id = event.get("user")
    return user_id if isinstance(user_id, str) and user_id else None
