"""``/dcs-backup``: parse, queue the work, ack at once (usage errors and a full queue answered right in the
ack), do the rest in the background."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.core.flow.inputs import Invocation
from bot.core.rules.grammar import UsageError, parse_command
from bot.core.rules.messages import Usage
from bot.slack.blocks import render_reply
from bot.slack.listeners.runner import BUSY, Runner
from bot.slack.middleware.shutdown_gate import RESTARTING
from bot.supervisor import Admission

COMMAND = "/dcs-backup"


def register(app: AsyncApp, runner: Runner) -> None:
    async def on_backup_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        await handle_command(ack, body, runner)

    app.command(COMMAND)(on_backup_command)


def invocation_from(body: dict[str, Any]) -> Invocation:
    user_id = _text(body, "user_id")
    return Invocation(
        user_id=user_id,
        user_name=_text(body, "user_name") or user_id,
        channel_id=_text(body, "channel_id"),
        response_url=_text(body, "response_url"),
        text=_text(body, "text"),
    )


def _text(body: dict[str, Any], key: str) -> str:
    # A form field is a string; anything else was not sent by Slack and counts as absent.
    value = body.get(key)
    return value if isinstance(value, str) else ""


async def handle_command(ack: AsyncAck, body: dict[str, Any], runner: Runner) -> None:
    invocation = invocation_from(body)
    parsed = parse_command(invocation.text)
    if isinstance(parsed, UsageError):
        message = render_reply(Usage(parsed.message))
        await ack(text=message.text, blocks=message.blocks)
        runner.usage_error(parsed, invocation)
        return
    # Nothing but queueing the work happens before the ack; the cloud is asked afterwards. Only when the
    # queue is full does the ack wait (a bounded moment) before saying the bot is too busy.
    match await runner.command(parsed, invocation):
        case Admission.QUEUED:
            await ack()
        case Admission.FULL:
            await ack(text=BUSY)
        case Admission.CLOSED:
            await ack(text=RESTARTING)
