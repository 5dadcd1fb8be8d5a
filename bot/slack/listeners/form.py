"""The backup form (INTERFACE §11): opening the modal (for ``/dcs-backup`` with no text, for the Home
tab's ``backup_new`` and for the global shortcut ``backup_shortcut``), serving its instance picker's
options (``block_suggestion``), and taking its submission (``view_submission``), which runs the typed
command's path — the same card, as the answer to the command that opened the form, or posted to the person
alone in the form's channel (from the Home tab or the shortcut: the channel chosen in the form).

Each answers within Slack's 3 s: the options within the flow's bound; a submission is acked first (errors
on its fields, or closing the modal) and its card follows from the command worker pool.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.flow.inputs import Invocation
from bot.core.rules.backup_form import CHANNEL_FIELD, INSTANCE_FIELD, FormErrors
from bot.core.rules.grammar import BackupCommand, format_command_for_display
from bot.core.rules.messages import Usage
from bot.slack.backup_form import (
    FORM_CALLBACK_ID,
    SHORTCUT_CALLBACK_ID,
    FormPlace,
    form_input,
    form_view,
    options_answer,
)
from bot.slack.errors import SlackCallError, call_slack
from bot.slack.home_view import NEW_BACKUP_ACTION
from bot.slack.listeners.runner import BUSY, Runner
from bot.slack.middleware.shutdown_gate import RESTARTING
from bot.supervisor import Admission

log = logging.getLogger(__name__)

#: Seconds to wait for views.open: the trigger id is good for 3 s from the person's action.
OPEN_TIMEOUT = 2.5

NO_CHANNEL = (
    "This form has lost track of its channel. Please close it and type /dcs-backup again in the channel."
)


def register(app: AsyncApp, runner: Runner) -> None:
    async def on_instance_options(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack(options=await options_for(body, runner))

    async def on_form_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        await handle_submission(ack, body, runner)

    async def on_open_from_nowhere(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        who = _user(body)
        trigger_id = body.get("trigger_id")
        if who is None or not isinstance(trigger_id, str) or not trigger_id:
            return
        # The Home tab and a global shortcut are in no channel: the form asks for one.
        runner.supervisor.spawn(
            open_form(client, runner, trigger_id, FormPlace(None), user_id=who[0]),
            name="open the backup form",
        )

    app.options({"action_id": INSTANCE_FIELD, "block_id": INSTANCE_FIELD})(on_instance_options)
    app.view_submission(FORM_CALLBACK_ID)(on_form_submitted)
    app.action(NEW_BACKUP_ACTION)(on_open_from_nowhere)
    app.global_shortcut(SHORTCUT_CALLBACK_ID)(on_open_from_nowhere)


async def open_form(
    client: AsyncWebClient, runner: Runner, trigger_id: str, place: FormPlace, *, user_id: str
) -> None:
    """Opens the form for the person whose action brought ``trigger_id``; when Slack refuses, tells them
    through the command's response_url (a click on the Home tab has none: it is logged only)."""
    view = form_view(place, runner.service.form.default_format)
    try:
        await call_slack(
            "views.open", client.views_open(trigger_id=trigger_id, view=view), timeout=OPEN_TIMEOUT
        )
    except SlackCallError as error:
        log.warning("could not open the backup form for %s: %s", user_id, error.failure)
        if place.response_url:
            await runner.notifier.reply(place.response_url, _form_unavailable())
        return


def _form_unavailable() -> Usage:
    return Usage(
        "The backup form could not be opened just now. Type the backup as a command instead, e.g. "
        '/dcs-backup redis-prod rdb "before the migration" — or try /dcs-backup again.'
    )


def _user(body: dict[str, Any]) -> tuple[str, str] | None:
    user = body.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not user_id:
        return None
    name = user.get("username") or user.get("name") if isinstance(user, dict) else None
    return user_id, name if isinstance(name, str) and name else user_id


def _view(body: dict[str, Any]) -> dict[str, Any]:
    view = body.get("view")
    return view if isinstance(view, dict) else {}


async def options_for(body: dict[str, Any], runner: Runner) -> list[dict[str, Any]]:
    """The picker's options for the person typing; none for a request Slack would not send."""
    who = _user(body)
    place = FormPlace.decode(_view(body).get("private_metadata"))
    typed = body.get("value")
    if who is None or place is None:
        return []
    options = await runner.service.form.options(
        who[0], place.channel_id, typed if isinstance(typed, str) else ""
    )
    return options_answer(options)


def _as_typed(command: BackupCommand) -> str:
    """The command the form stands for, as it would be typed (for the audit trail)."""
    try:
        return format_command_for_display(command)
    except ValueError:  # a remark the grammar cannot quote; the form took it all the same
        return f"{command.instance} (from the form)"


async def handle_submission(ack: AsyncAck, body: dict[str, Any], runner: Runner) -> None:
    who = _user(body)
    view = _view(body)
    place = FormPlace.decode(view.get("private_metadata"))
    if who is None or place is None:
        await ack(response_action="errors", errors={INSTANCE_FIELD: NO_CHANNEL})
        return
    user_id, user_name = who
    entered = form_input(view)
    checked = await runner.service.form.check(user_id, place.channel_id, entered)
    if isinstance(checked, FormErrors):
        await ack(response_action="errors", errors=checked.errors)
        return
    channel_id = place.channel_id or entered.channel
    if channel_id is None:  # check() refuses a form without one; this tells mypy
        await ack(response_action="errors", errors={CHANNEL_FIELD: NO_CHANNEL})
        return
    invocation = Invocation(
        user_id=user_id,
        user_name=user_name,
        channel_id=channel_id,
        response_url=place.response_url or "",
        text=_as_typed(checked),
    )
    match await runner.command(checked, invocation):
        case Admission.QUEUED:
            await ack()
        case Admission.FULL:
            await ack(response_action="errors", errors={INSTANCE_FIELD: BUSY})
        case Admission.CLOSED:
            await ack(response_action="errors", errors={INSTANCE_FIELD: RESTARTING})
