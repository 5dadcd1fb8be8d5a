"""Slack's checks of the views an app opens, updates or publishes, and of the options it serves.

Pure functions: each returns the problems found, in Slack's wording for ``response_metadata.messages``
(``[ERROR] must be at most 24 characters [json-pointer:/view/title/text]``); no problems means Slack would
take it. Only the rules an app like the bot could break are checked, with Slack's documented limits
(docs.slack.dev, "Reference: views", "Block Kit" blocks and elements, "Composition objects").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

VIEW_TYPES: Final = frozenset({"modal", "home"})
MAX_VIEW_BLOCKS: Final = 100
MAX_MODAL_TITLE: Final = 24
MAX_MODAL_BUTTON: Final = 24
MAX_CALLBACK_ID: Final = 255
MAX_EXTERNAL_ID: Final = 255
MAX_PRIVATE_METADATA: Final = 3000
MAX_BLOCK_ID: Final = 255
MAX_ACTION_ID: Final = 255
MAX_LABEL: Final = 2000
MAX_HINT: Final = 2000
MAX_PLACEHOLDER: Final = 150
MAX_SECTION_TEXT: Final = 3000
MAX_SECTION_FIELDS: Final = 10
MAX_FIELD_TEXT: Final = 2000
MAX_HEADER_TEXT: Final = 150
MAX_CONTEXT_ELEMENTS: Final = 10
MAX_ACTIONS_ELEMENTS: Final = 25
MAX_BUTTON_TEXT: Final = 75
MAX_BUTTON_VALUE: Final = 2000
MAX_OPTION_TEXT: Final = 75
MAX_OPTION_VALUE: Final = 150
MAX_CHOICES: Final = 10  # radio_buttons and checkboxes options
MAX_SUGGESTED_OPTIONS: Final = 100  # options (or option groups) in a block_suggestion answer
MAX_TEXT_INPUT: Final = 3000

INPUT_ELEMENTS: Final = frozenset(
    {
        "plain_text_input",
        "external_select",
        "static_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "radio_buttons",
        "checkboxes",
        "datepicker",
        "number_input",
    }
)
BLOCK_TYPES: Final = frozenset(
    {"section", "header", "context", "actions", "divider", "image", "input", "rich_text"}
)


def _error(message: str, pointer: str) -> str:
    return f"[ERROR] {message} [json-pointer:{pointer}]"


def _too_long(limit: int, pointer: str) -> str:
    return _error(f"must be less than {limit + 1} characters", pointer)


def _text_of(obj: Any) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        return str(obj["text"])
    return None


def _plain_text(obj: Any, limit: int, pointer: str, *, required: bool = True) -> Iterator[str]:
    if obj is None:
        if required:
            yield _error("is required", pointer)
        return
    if not isinstance(obj, dict) or obj.get("type") != "plain_text":
        yield _error("must be a plain_text object", pointer)
        return
    text = _text_of(obj)
    if text is None or not text:
        yield _error("must be at least 1 character", f"{pointer}/text")
    elif len(text) > limit:
        yield _too_long(limit, f"{pointer}/text")


def _text(obj: Any, limit: int, pointer: str) -> Iterator[str]:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        yield _error("must be a text object", pointer)
        return
    text = _text_of(obj)
    if text is None or not text:
        yield _error("must be at least 1 character", f"{pointer}/text")
    elif len(text) > limit:
        yield _too_long(limit, f"{pointer}/text")


def _string(value: Any, limit: int, pointer: str, *, required: bool = False) -> Iterator[str]:
    if value is None:
        if required:
            yield _error("is required", pointer)
        return
    if not isinstance(value, str):
        yield _error("must be a string", pointer)
    elif len(value) > limit:
        yield _too_long(limit, pointer)


def option_problems(option: Any, pointer: str) -> Iterator[str]:
    """One option object: ``text`` (plain_text, or mrkdwn where a choice allows it) and ``value``."""
    if not isinstance(option, dict):
        yield _error("must be an option object", pointer)
        return
    yield from _text(option.get("text"), MAX_OPTION_TEXT, f"{pointer}/text")
    yield from _string(option.get("value"), MAX_OPTION_VALUE, f"{pointer}/value", required=True)
    if option.get("description") is not None:
        yield from _text(option["description"], MAX_OPTION_TEXT, f"{pointer}/description")


def _same_option(one: Any, other: Any) -> bool:
    return isinstance(one, dict) and isinstance(other, dict) and one.get("value") == other.get("value")


def _choices(element: dict[str, Any], pointer: str) -> Iterator[str]:
    options = element.get("options")
    if not isinstance(options, list) or not options:
        yield _error("must provide at least 1 option", f"{pointer}/options")
        return
    if len(options) > MAX_CHOICES:
        yield _error(f"must provide no more than {MAX_CHOICES} items", f"{pointer}/options")
    for index, option in enumerate(options):
        yield from option_problems(option, f"{pointer}/options/{index}")
    initial = element.get("initial_option")
    if initial is not None and not any(_same_option(initial, o) for o in options):
        yield _error("must match one of the options", f"{pointer}/initial_option")
    for index, chosen in enumerate(element.get("initial_options") or []):
        if not any(_same_option(chosen, o) for o in options):
            yield _error("must match one of the options", f"{pointer}/initial_options/{index}")


def element_problems(element: Any, pointer: str) -> Iterator[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        yield _error("must be an element object", pointer)
        return
    kind = element["type"]
    yield from _string(element.get("action_id"), MAX_ACTION_ID, f"{pointer}/action_id")
    if element.get("placeholder") is not None:
        yield from _plain_text(element["placeholder"], MAX_PLACEHOLDER, f"{pointer}/placeholder")
    if kind == "button":
        yield from _plain_text(element.get("text"), MAX_BUTTON_TEXT, f"{pointer}/text")
        yield from _string(element.get("value"), MAX_BUTTON_VALUE, f"{pointer}/value")
        if element.get("style") not in (None, "primary", "danger"):
            yield _error("must be one of primary, danger", f"{pointer}/style")
    elif kind in ("radio_buttons", "checkboxes", "static_select"):
        yield from _choices(element, pointer)
    elif kind == "external_select":
        if element.get("initial_option") is not None:
            yield from option_problems(element["initial_option"], f"{pointer}/initial_option")
        minimum = element.get("min_query_length")
        if minimum is not None and (not isinstance(minimum, int) or minimum < 0):
            yield _error("must be a non-negative integer", f"{pointer}/min_query_length")
    elif kind == "plain_text_input":
        yield from _text_input(element, pointer)


def _text_input(element: dict[str, Any], pointer: str) -> Iterator[str]:
    bounds: dict[str, int] = {}
    for key in ("min_length", "max_length"):
        value = element.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_TEXT_INPUT:
            yield _error(f"must be an integer from 0 to {MAX_TEXT_INPUT}", f"{pointer}/{key}")
        else:
            bounds[key] = value
    if bounds.get("min_length", 0) > bounds.get("max_length", MAX_TEXT_INPUT):
        yield _error("must not be more than max_length", f"{pointer}/min_length")
    initial = element.get("initial_value")
    if initial is not None:
        if not isinstance(initial, str):
            yield _error("must be a string", f"{pointer}/initial_value")
        elif len(initial) > bounds.get("max_length", MAX_TEXT_INPUT):
            yield _error("must not be longer than max_length", f"{pointer}/initial_value")


def block_problems(block: Any, pointer: str) -> Iterator[str]:
    if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
        yield _error(f"must be one of {', '.join(sorted(BLOCK_TYPES))}", f"{pointer}/type")
        return
    kind = block["type"]
    yield from _string(block.get("block_id"), MAX_BLOCK_ID, f"{pointer}/block_id")
    if kind == "input":
        yield from _plain_text(block.get("label"), MAX_LABEL, f"{pointer}/label")
        if block.get("hint") is not None:
            yield from _plain_text(block["hint"], MAX_HINT, f"{pointer}/hint")
        element = block.get("element")
        if not isinstance(element, dict) or element.get("type") not in INPUT_ELEMENTS:
            yield _error("must be an input element", f"{pointer}/element")
        else:
            yield from element_problems(element, f"{pointer}/element")
    elif kind == "section":
        if block.get("text") is None and not block.get("fields"):
            yield _error("must provide text or fields", pointer)
        if block.get("text") is not None:
            yield from _text(block["text"], MAX_SECTION_TEXT, f"{pointer}/text")
        fields = block.get("fields") or []
        if len(fields) > MAX_SECTION_FIELDS:
            yield _error(f"must provide no more than {MAX_SECTION_FIELDS} items", f"{pointer}/fields")
        for index, item in enumerate(fields):
            yield from _text(item, MAX_FIELD_TEXT, f"{pointer}/fields/{index}")
        if block.get("accessory") is not None:
            yield from element_problems(block["accessory"], f"{pointer}/accessory")
    elif kind == "header":
        yield from _plain_text(block.get("text"), MAX_HEADER_TEXT, f"{pointer}/text")
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            yield _error("must provide at least 1 element", f"{pointer}/elements")
        elif len(elements) > MAX_CONTEXT_ELEMENTS:
            yield _error(f"must provide no more than {MAX_CONTEXT_ELEMENTS} items", f"{pointer}/elements")
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            yield _error("must provide at least 1 element", f"{pointer}/elements")
        else:
            if len(elements) > MAX_ACTIONS_ELEMENTS:
                yield _error(f"must provide no more than {MAX_ACTIONS_ELEMENTS} items", f"{pointer}/elements")
            for index, element in enumerate(elements):
                yield from element_problems(element, f"{pointer}/elements/{index}")


def view_problems(view: Any, *, expected_type: str | None = None) -> list[str]:
    """What Slack would refuse in ``view`` (``expected_type``: ``modal`` for views.open/update,
    ``home`` for views.publish)."""
    if not isinstance(view, dict):
        return [_error("must be a view object", "/view")]
    problems: list[str] = []
    kind = view.get("type")
    if kind not in VIEW_TYPES:
        problems.append(_error("must be one of modal, home", "/view/type"))
    elif expected_type is not None and kind != expected_type:
        problems.append(_error(f"must be {expected_type} for this method", "/view/type"))
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        problems.append(_error("is required", "/view/blocks"))
        blocks = []
    if len(blocks) > MAX_VIEW_BLOCKS:
        problems.append(_error(f"must provide no more than {MAX_VIEW_BLOCKS} items", "/view/blocks"))
    seen_ids: set[str] = set()
    for index, block in enumerate(blocks):
        problems.extend(block_problems(block, f"/view/blocks/{index}"))
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str):
            if block_id in seen_ids:
                problems.append(_error("must be unique", f"/view/blocks/{index}/block_id"))
            seen_ids.add(block_id)
    if kind == "modal":
        problems.extend(_plain_text(view.get("title"), MAX_MODAL_TITLE, "/view/title"))
        for key in ("submit", "close"):
            problems.extend(_plain_text(view.get(key), MAX_MODAL_BUTTON, f"/view/{key}", required=False))
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and view.get("submit") is None:
            problems.append(_error("is required when the view has input blocks", "/view/submit"))
    problems.extend(_string(view.get("callback_id"), MAX_CALLBACK_ID, "/view/callback_id"))
    problems.extend(_string(view.get("external_id"), MAX_EXTERNAL_ID, "/view/external_id"))
    problems.extend(_string(view.get("private_metadata"), MAX_PRIVATE_METADATA, "/view/private_metadata"))
    return problems


def suggestion_problems(answer: Any) -> list[str]:
    """What Slack would refuse in an app's answer to a ``block_suggestion``: at most 100 options (or option
    groups), each option valid."""
    if not isinstance(answer, dict):
        return [_error("must be an object with options or option_groups", "/")]
    problems: list[str] = []
    options = answer.get("options")
    groups = answer.get("option_groups")
    if options is None and groups is None:
        return [_error("must provide options or option_groups", "/options")]
    if options is not None:
        if not isinstance(options, list):
            return [_error("must be a list", "/options")]
        if len(options) > MAX_SUGGESTED_OPTIONS:
            problems.append(_error(f"must provide no more than {MAX_SUGGESTED_OPTIONS} items", "/options"))
        for index, option in enumerate(options):
            problems.extend(option_problems(option, f"/options/{index}"))
    if groups is not None:
        if not isinstance(groups, list):
            return [_error("must be a list", "/option_groups")]
        if len(groups) > MAX_SUGGESTED_OPTIONS:
            problems.append(
                _error(f"must provide no more than {MAX_SUGGESTED_OPTIONS} items", "/option_groups")
            )
        for g, group in enumerate(groups):
            pointer = f"/option_groups/{g}"
            if not isinstance(group, dict):
                problems.append(_error("must be an option group", pointer))
                continue
            problems.extend(_plain_text(group.get("label"), MAX_OPTION_TEXT, f"{pointer}/label"))
            for index, option in enumerate(group.get("options") or []):
                problems.extend(option_problems(option, f"{pointer}/options/{index}"))
    return problems
