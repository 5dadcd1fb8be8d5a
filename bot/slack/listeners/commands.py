"""``/dcs-backup``: parse, queue the work, ack at once (usage errors and a full queue answered right in the
ack), do the rest in the background. A command that asks the cloud is acknowledged with what is being
looked up, and its answer replaces that; no text opens the backup form."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.flow.inputs import Invocation
from bot.core.rules.grammar import (
    BackupCommand,
    Command,
    FormCommand,
    ListCommand,
    StatusCommand,
    UsageError,
    parse_command,
)
from bot.core.rules.messages import Usage
from bot.slack.backup_form import FormPlace
from bot.slack.blocks import escape, render_reply
from bot.slack.listeners.form import open_form
from bot.slack.listeners.runner import BUSY, Runner
from bot.slack.middleware.shutdown_gate import RESTARTING
from bot.supervisor import Admission

COMMAND = "/dcs-backup"


def register(app: AsyncApp, runner: Runner) -> None:
    async def on_backup_command(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await handle_command(ack, body, runner, client)

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


def looking_up(command: Command) -> str | None:
    """The ack of a command that asks the cloud: what the bot is looking up (the text the person typed,
    escaped); None for one answered without the cloud."""
    match command:
        case BackupCommand(instance=instance) | ListCommand(instance=instance):
            return f"Looking up *{escape(instance)}*…"
        case StatusCommand(backup_id=backup_id):
            return f"Looking up backup *{escape(backup_id)}*…"
    return None


async def handle_command(
    ack: AsyncAck, body: dict[str, Any], runner: Runner, client: AsyncWebClient | None = None
) -> None:
    invocation = invocation_from(body)
    parsed = parse_command(invocation.text)
    if isinstance(parsed, UsageError):
        message = render_reply(Usage(parsed.message))
        await ack(text=message.text, blocks=message.blocks)
        runner.usage_error(parsed, invocation)
        return
    if isinstance(parsed, FormCommand):
        await ack()
        trigger_id = _text(body, "trigger_id")
        if client is not None and trigger_id and invocation.channel_id:
            place = FormPlace(invocation.channel_id, invocation.response_url or None)
            runner.supervisor.spawn(
                open_form(client, runner, trigger_id, place, user_id=invocation.user_id),
                name="open the backup form",
            )
        return
    # Nothing but queueing the work happens before the ack; the cloud is asked afterwards. Only when the
    # queue is full does the ack wait (a bounded moment) before saying the bot is too busy.
    ack_text = looking_up(parsed)
    match await runner.command(parsed, invocation, replace_ack=ack_text is not None):
        case Admission.QUEUED:
            await (ack(text=ack_text, response_type="ephemeral") if ack_text else ack())
        case Admission.FULL:
            await ack(text=BUSY)
        case Admission.CLOSED:
            await ack(text=RESTARTING)
