"""Button clicks. The button's value is an opaque request id; nothing else in the click is trusted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.core.flow.inputs import Click
from bot.slack.blocks import (
    APPROVE_ACTION,
    CANCEL_ACTION,
    CONFIRM_ACTION,
    PICK_ACTION,
    REJECT_ACTION,
    RETRY_ACTION,
    RUN_ACTION,
)
from bot.slack.listeners.runner import Runner


def register(app: AsyncApp, runner: Runner) -> None:
    handlers: dict[str, Callable[[Click], Awaitable[None]]] = {
        CONFIRM_ACTION: runner.service.confirm,
        CANCEL_ACTION: runner.service.cancel,
        APPROVE_ACTION: runner.service.approve,
        REJECT_ACTION: runner.service.reject,
        RETRY_ACTION: runner.service.retry,
        RUN_ACTION: runner.service.run,
        PICK_ACTION: runner.service.pick,
    }
    for action_id, handler in handlers.items():
        app.action(action_id)(_listener(handler, runner))


def _listener(
    handler: Callable[[Click], Awaitable[None]], runner: Runner
) -> Callable[[AsyncAck, dict[str, Any]], Awaitable[None]]:
    async def on_click(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = click_from(body)
        if click is not None:
            runner.click(handler, click)

    return on_click


def click_from(body: dict[str, Any]) -> Click | None:
    """The click in a ``block_actions`` body, or None when the body is not one Slack would send. A click
    on the Home tab (its container is the ``home`` view) comes with no response_url and no channel."""
    actions = body.get("actions")
    user = body.get("user")
    response_url = body.get("response_url")
    if not isinstance(actions, list) or not actions:
        return None
    if not isinstance(response_url, str):
        if not _on_home_tab(body):
            return None
        response_url = None
    value = _field(actions[0], "value")
    user_id = _field(user, "id")
    if value is None or user_id is None:
        return None
    channel_id = _field(body.get("channel"), "id") or _field(body.get("container"), "channel_id")
    user_name = _field(user, "username") or _field(user, "name")
    return Click(
        user_id=user_id,
        request_id=value,
        response_url=response_url,
        channel_id=channel_id,
        user_name=user_name,
    )


def _on_home_tab(body: dict[str, Any]) -> bool:
    return _field(body.get("container"), "type") == "view" and _field(body.get("view"), "type") == "home"


def _field(part: object, key: str) -> str | None:
    """``part[key]`` when ``part`` is an object and the field a non-empty string; None otherwise."""
    value = part.get(key) if isinstance(part, dict) else None
    return value if isinstance(value, str) and value else None
