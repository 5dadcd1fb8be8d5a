"""The backup form as Slack sees it (INTERFACE §11) — pure functions, no I/O: the modal, what travels in
its ``private_metadata``, the picker's options, and reading a submission's ``view.state``.

The ids of the modal, its inputs and the picker are binding: ``callback_id`` ``backup_form``; inputs
``instance`` (external_select), ``format`` (radio_buttons), ``remark`` (plain_text_input, optional),
``dry_run`` (checkboxes, optional), each input's ``block_id`` equal to its ``action_id``. A form opened
where there is no channel (the Home tab's ``backup_new``) asks for one first: ``channel``
(conversations_select).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.rules.backup_form import (
    CHANNEL_FIELD,
    DRY_RUN_FIELD,
    FORMAT_FIELD,
    INSTANCE_FIELD,
    REMARK_FIELD,
    FormInput,
    InstanceOption,
)
from bot.core.rules.grammar import REMARK_MAX_CHARS
from bot.core.rules.instances import BackupFormat

FORM_CALLBACK_ID = "backup_form"
#: The app's global shortcut (both manifests), which opens the form from anywhere in Slack.
SHORTCUT_CALLBACK_ID = "backup_shortcut"
#: Slack's limit on ``private_metadata``; the channel and a response_url fit well within it.
PRIVATE_METADATA_LIMIT = 3000

Block = dict[str, Any]


def _plain(text: str) -> Block:
    return {"type": "plain_text", "text": text, "emoji": True}


def _option(text: str, value: str) -> Block:
    return {"text": _plain(text), "value": value}


@dataclass(frozen=True)
class FormPlace:
    """Where the form was asked for, carried in its ``private_metadata``: the channel the card goes to and,
    when the form came from a command, that command's response_url (the card then arrives as the command's
    answer; without one it is posted with ``chat.postEphemeral``). No channel (the Home tab): the form
    asks for one."""

    channel_id: str | None
    response_url: str | None = None

    def encode(self) -> str:
        data: dict[str, str | None] = {"channel": self.channel_id}
        if self.response_url:
            data["response_url"] = self.response_url
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def decode(cls, metadata: object) -> FormPlace | None:
        """None when ``metadata`` is not what :meth:`encode` wrote."""
        if not isinstance(metadata, str):
            return None
        try:
            data = json.loads(metadata)
        except ValueError:
            return None
        if not isinstance(data, dict) or "channel" not in data:
            return None
        channel, url = data["channel"], data.get("response_url")
        if not (channel is None or (isinstance(channel, str) and channel)) or not isinstance(url, str | None):
            return None
        return cls(channel, url or None)


def _format_option(backup_format: BackupFormat) -> Block:
    described = {
        BackupFormat.AOF: "AOF: every write since the last rewrite (Redis 4.0 and later)",
        BackupFormat.RDB: "RDB: a point-in-time snapshot",
    }
    return _option(described[backup_format], backup_format.value)


def form_view(place: FormPlace, default_format: BackupFormat) -> Block:
    """The modal ``views.open`` shows: the picker, the format (``default_format`` chosen), the remark and
    the dry run."""
    formats = [_format_option(f) for f in BackupFormat]
    channel_blocks = [] if place.channel_id is not None else [_channel_input()]
    return {
        "type": "modal",
        "callback_id": FORM_CALLBACK_ID,
        "title": _plain("Back up a DCS instance"),
        "submit": _plain("Continue"),
        "close": _plain("Cancel"),
        "private_metadata": place.encode(),
        "blocks": [
            *channel_blocks,
            {
                "type": "input",
                "block_id": INSTANCE_FIELD,
                "label": _plain("Instance"),
                "hint": _plain(
                    "Only the instances you may back up in this channel are listed."
                    if place.channel_id is not None
                    else "Only the instances you may back up in some channel are listed; the channel you "
                    "chose is checked when you continue."
                ),
                "element": {
                    "type": "external_select",
                    "action_id": INSTANCE_FIELD,
                    "placeholder": _plain("Type part of its name"),
                    "min_query_length": 0,
                },
            },
            {
                "type": "input",
                "block_id": FORMAT_FIELD,
                "label": _plain("Format"),
                "element": {
                    "type": "radio_buttons",
                    "action_id": FORMAT_FIELD,
                    "options": formats,
                    "initial_option": _format_option(default_format),
                },
            },
            {
                "type": "input",
                "block_id": REMARK_FIELD,
                "optional": True,
                "label": _plain("Remark"),
                "hint": _plain(f"Stored with the backup; at most {REMARK_MAX_CHARS} characters."),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REMARK_FIELD,
                    "max_length": REMARK_MAX_CHARS,
                    "placeholder": _plain("e.g. before the migration"),
                },
            },
            {
                "type": "input",
                "block_id": DRY_RUN_FIELD,
                "optional": True,
                "label": _plain("Dry run"),
                "element": {
                    "type": "checkboxes",
                    "action_id": DRY_RUN_FIELD,
                    "options": [_option("Only show what would be done", DRY_RUN_FIELD)],
                },
            },
        ],
    }


def _channel_input() -> Block:
    return {
        "type": "input",
        "block_id": CHANNEL_FIELD,
        "label": _plain("Channel"),
        "hint": _plain("The confirmation card is posted there, visible only to you."),
        "element": {
            "type": "conversations_select",
            "action_id": CHANNEL_FIELD,
            "placeholder": _plain("Pick a channel"),
            # Where the modal is opened from a conversation, that one is chosen to begin with.
            "default_to_current_conversation": True,
            "filter": {"include": ["public", "private"], "exclude_bot_users": True},
        },
    }


def options_answer(options: Sequence[InstanceOption]) -> list[Block]:
    """The options of a ``block_suggestion`` answer."""
    return [_option(o.label, o.value) for o in options]


def _state_of(values: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    block = values.get(field)
    state = block.get(field) if isinstance(block, dict) else None
    return state if isinstance(state, dict) else {}


def _selected_value(state: Mapping[str, Any]) -> str | None:
    option = state.get("selected_option")
    value = option.get("value") if isinstance(option, dict) else None
    return value if isinstance(value, str) and value else None


def form_input(view: Mapping[str, Any]) -> FormInput:
    """What was entered in a submitted form, from the payload's ``view`` (missing or odd parts count as
    not entered)."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    values = values if isinstance(values, dict) else {}
    remark = _state_of(values, REMARK_FIELD).get("value")
    ticked = _state_of(values, DRY_RUN_FIELD).get("selected_options")
    dry_run = isinstance(ticked, list) and any(
        isinstance(o, dict) and o.get("value") == DRY_RUN_FIELD for o in ticked
    )
    channel = _state_of(values, CHANNEL_FIELD)
    chosen = channel.get("selected_conversation") or channel.get("selected_channel")
    return FormInput(
        channel=chosen if isinstance(chosen, str) and chosen else None,
        instance=_selected_value(_state_of(values, INSTANCE_FIELD)),
        backup_format=_selected_value(_state_of(values, FORMAT_FIELD)),
        remark=remark if isinstance(remark, str) else None,
        dry_run=dry_run,
    )
