"""What a person entered in a modal, as Slack reports it in ``view.state.values`` — and what the Slack client
itself refuses to submit (a required field left empty, text outside the input's length bounds).

Pure functions. ``entered`` maps an input's ``block_id`` to what was entered:

- ``plain_text_input``: the text (``None``: left empty);
- ``external_select``/``static_select``: an option object, or its value (the option's text is then that
  value too);
- ``radio_buttons``: the value of one of its options;
- ``checkboxes``: the values of the options ticked (``True``: all of them, ``False``: none);
- ``conversations_select``/``channels_select``: the channel id chosen (an input left alone keeps its
  ``initial_conversation``/``initial_channel``; ``default_to_current_conversation`` chooses nothing here,
  as the stand-in opens modals from no conversation).

An input not in ``entered`` keeps its initial value, as a person who leaves it alone does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.standins.slack.timeline import JsonDict


class NotSubmittableError(ValueError):
    """The Slack client would not send this submission (pass ``force`` to send it anyway)."""


def _option(value: Any) -> JsonDict:
    if isinstance(value, dict):
        return value
    return {"text": {"type": "plain_text", "text": str(value), "emoji": True}, "value": str(value)}


def _choice(element: JsonDict, value: Any) -> JsonDict:
    for option in element.get("options") or []:
        if isinstance(option, dict) and option.get("value") == value:
            return option
    raise NotSubmittableError(f"{value!r} is not one of the options of {element.get('action_id')!r}")


def _ticked(element: JsonDict, value: Any) -> list[JsonDict]:
    options = [o for o in element.get("options") or [] if isinstance(o, dict)]
    if value is True:
        return options
    if value is False or value is None:
        return []
    return [_choice(element, each) for each in value]


def element_value(element: JsonDict, value: Any, *, entered: bool) -> JsonDict:
    """The state of one element: ``value`` if ``entered``, else the element's initial value."""
    kind = str(element.get("type"))
    state: JsonDict = {"type": kind}
    if kind == "plain_text_input":
        state["value"] = (value or None) if entered else element.get("initial_value")
    elif kind in ("external_select", "static_select"):
        state["selected_option"] = (
            (None if value is None else _option(value)) if entered else element.get("initial_option")
        )
    elif kind == "radio_buttons":
        state["selected_option"] = (
            (None if value is None else _choice(element, value)) if entered else element.get("initial_option")
        )
    elif kind == "checkboxes":
        state["selected_options"] = (
            _ticked(element, value) if entered else list(element.get("initial_options") or [])
        )
    elif kind in _CONVERSATION_SELECTS:
        key = _CONVERSATION_SELECTS[kind]
        state[f"selected_{key}"] = value if entered else element.get(f"initial_{key}")
    else:
        state["value"] = value if entered else None
    return state


_CONVERSATION_SELECTS = {"conversations_select": "conversation", "channels_select": "channel"}


def _is_empty(state: JsonDict) -> bool:
    if "selected_options" in state:
        return not state["selected_options"]
    if "selected_option" in state:
        return state["selected_option"] is None
    for key in _CONVERSATION_SELECTS.values():
        if f"selected_{key}" in state:
            return not state[f"selected_{key}"]
    return state.get("value") in (None, "")


def client_refusal(block: JsonDict, state: JsonDict) -> str | None:
    """Why the Slack client would not submit this input as it stands, or None."""
    label = (
        block.get("label", {}).get("text", block.get("block_id"))
        if isinstance(block.get("label"), dict)
        else ""
    )
    if _is_empty(state):
        return None if block.get("optional") else f"{label!r} is required"
    element = block.get("element") or {}
    text = state.get("value")
    if element.get("type") == "plain_text_input" and isinstance(text, str):
        # Slack's own count is unconfirmed (code points, UTF-16 units or characters seen): code points.
        maximum, minimum = element.get("max_length"), element.get("min_length")
        if isinstance(maximum, int) and len(text) > maximum:
            return f"{label!r} allows at most {maximum} characters"
        if isinstance(minimum, int) and len(text) < minimum:
            return f"{label!r} needs at least {minimum} characters"
    return None


def view_state(blocks: list[JsonDict], entered: Mapping[str, Any], *, force: bool = False) -> JsonDict:
    """``state.values`` of a modal with ``blocks`` after a person entered ``entered``. Raises
    :class:`NotSubmittableError` for what the Slack client refuses, unless ``force``."""
    unknown = set(entered) - {str(b.get("block_id")) for b in blocks if b.get("type") == "input"}
    if unknown:
        raise NotSubmittableError(f"no input block {sorted(unknown)} in the view")
    values: JsonDict = {}
    for block in blocks:
        if block.get("type") != "input" or not isinstance(block.get("element"), dict):
            continue
        block_id = str(block.get("block_id"))
        element: JsonDict = block["element"]
        state = element_value(element, entered.get(block_id), entered=block_id in entered)
        problem = client_refusal(block, state)
        if problem is not None and not force:
            raise NotSubmittableError(f"the Slack client would not submit this: {problem}")
        values[block_id] = {str(element.get("action_id")): state}
    return values
