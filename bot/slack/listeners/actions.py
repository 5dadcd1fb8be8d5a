"""Button clicks. The button's value is an opaque request id; nothing else in the click is trusted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.core.flow.inputs import Click
from bot.slack.blocks import APPROVE_ACTION, CANCEL_ACTION, CONFIRM_ACTION, REJECT_ACTION
from bot.slack.listeners.runner import Runner


def register(app: AsyncApp, runner: Runner) -> None:
    handlers: dict[str, Callable[[Click], Awaitable[None]]] = {
        CONFIRM_ACTION: runner.service.confirm,
        CANCEL_ACTION: runner.service.cancel,
        APPROVE_ACTION: runner.service.approve,
        REJECT_ACTION: runner.service.reject,
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
    actions = body.get("actions") or []
    user = body.get("user") or {}
    response_url = body.get("response_url")
    if not actions or not isinstance(user, dict) or not isinstance(response_url, str):
        return None
    value = actions[0].get("value") if isinstance(actions[0], dict) else None
    user_id = user.get("id")
    if not isinstance(value, str) or not isinstance(user_id, str):
        return None
    channel = body.get("channel") or {}
    container = body.get("container") or {}
    channel_id = channel.get("id") if isinstance(channel, dict) else None
    channel_id = channel_id or (container.get("channel_id") if isinstance(container, dict) else None)
    return Click(user_id=user_id, request_id=value, response_url=response_url, channel_id=channel_id)
