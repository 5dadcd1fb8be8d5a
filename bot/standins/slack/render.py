"""Plain-text rendering of Slack messages, of views (modals, Home tabs) and of the whole conversation.
Pure functions only."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.standins.slack.timeline import (
    SLACKBOT_USER_ID,
    ButtonClicked,
    CommandTyped,
    Content,
    JsonDict,
    Message,
    MessageDeleted,
    MessagePosted,
    MessageReplaced,
    TimelineEvent,
)

INDENT = "    "
THREAD_MARK = "↳ "


@dataclass(frozen=True)
class Directory:
    """Names to show for ids."""

    bot_user_id: str
    bot_name: str
    user_names: Mapping[str, str] = field(default_factory=dict)
    channel_names: Mapping[str, str] = field(default_factory=dict)

    def author(self, user_id: str) -> str:
        if user_id == self.bot_user_id:
            return self.bot_name
        if user_id == SLACKBOT_USER_ID:
            return "Slackbot"
        return self.mention(user_id)

    def mention(self, user_id: str) -> str:
        if user_id == self.bot_user_id:
            return f"@{self.bot_name}"
        return "@" + self.user_names.get(user_id, user_id.lower())

    def channel(self, channel_id: str) -> str:
        name = self.channel_names.get(channel_id)
        return f"#{name}" if name else channel_id


# <@U123>, <@U123|alice>, <#C123|ops>, <!here>, <!subteam^S123|@sre>, <https://x|label>
_ANGLE_TOKEN = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_SPECIAL_MENTIONS = {"here": "@here", "channel": "@channel", "everyone": "@everyone"}


def _angle_token(match: re.Match[str], directory: Directory) -> str:
    target, label = match.group(1), match.group(2)
    if target.startswith("@"):
        return f"@{label}" if label else directory.mention(target[1:])
    if target.startswith("#"):
        return f"#{label}" if label else directory.channel(target[1:])
    if target.startswith("!subteam^"):
        if not label:
            return "@" + target.removeprefix("!subteam^")
        return label if label.startswith("@") else f"@{label}"
    if target.startswith("!"):
        return _SPECIAL_MENTIONS.get(target[1:], label or target)
    return f"{label} ({target})" if label and label != target else target


def mrkdwn_to_text(text: str, directory: Directory) -> str:
    """Resolves Slack's ``<...>`` tokens to what a reader sees, then undoes Slack's ``& < >`` escaping.

    The order matters: text a bot escaped (``&lt;!here&gt;``) must stay literal, never become a mention.
    """
    resolved = _ANGLE_TOKEN.sub(lambda m: _angle_token(m, directory), text)
    return resolved.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def text_object(obj: Any, directory: Directory) -> str:
    """A Block Kit text object (plain_text or mrkdwn), or a bare string."""
    if isinstance(obj, str):
        return obj
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text", ""))
    return mrkdwn_to_text(text, directory) if obj.get("type") == "mrkdwn" else text


def _element(element: Any, directory: Directory) -> str:
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind == "button":
        return f"[{text_object(element.get('text'), directory)}]"
    if kind in ("plain_text", "mrkdwn"):
        return text_object(element, directory)
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    placeholder = element.get("placeholder")
    if placeholder is not None:
        return f"[{text_object(placeholder, directory)} v]"
    return f"[{kind}]"


def _option_text(option: Any, directory: Directory) -> str:
    return text_object(option.get("text"), directory) if isinstance(option, dict) else ""


def _input_element(element: Any, directory: Directory) -> str:
    """An input as a person sees it before typing: what is chosen or entered, or the placeholder."""
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind in ("radio_buttons", "checkboxes"):
        chosen = element.get("initial_options") or [element.get("initial_option")]
        values = {o.get("value") for o in chosen if isinstance(o, dict)}
        marks = ("(•)", "( )") if kind == "radio_buttons" else ("[x]", "[ ]")
        return "  ".join(
            f"{marks[0] if isinstance(o, dict) and o.get('value') in values else marks[1]} "
            f"{_option_text(o, directory)}"
            for o in element.get("options") or []
        )
    placeholder = text_object(element.get("placeholder"), directory)
    if kind in ("external_select", "static_select"):
        initial = element.get("initial_option")
        return f"[{_option_text(initial, directory) if initial else placeholder} v]"
    if kind == "plain_text_input":
        shown = element.get("initial_value") or placeholder
        limit = element.get("max_length")
        return f"[{shown}___]" + (f" (at most {limit} characters)" if isinstance(limit, int) else "")
    return _element(element, directory)


def _rich_text(elements: Any, directory: Directory) -> str:
    if not isinstance(elements, list):
        return ""
    parts: list[str] = []
    for element in elements:
        if not isinstance(element, dict):
            continue
        kind = element.get("type")
        if kind == "text":
            parts.append(str(element.get("text", "")))
        elif kind == "user":
            parts.append(directory.mention(str(element.get("user_id", ""))))
        elif kind == "channel":
            parts.append(directory.channel(str(element.get("channel_id", ""))))
        elif kind == "link":
            parts.append(str(element.get("text") or element.get("url", "")))
        elif kind == "emoji":
            parts.append(f":{element.get('name', '')}:")
        elif "elements" in element:
            parts.append(_rich_text(element["elements"], directory))
            if kind in ("rich_text_section", "rich_text_preformatted", "rich_text_quote"):
                parts.append("\n")
        elif kind == "broadcast":
            parts.append(f"@{element.get('range', '')}")
    return "".join(parts)


def render_block(block: JsonDict, directory: Directory) -> list[str]:
    kind = block.get("type")
    lines: list[str] = []
    if kind == "section":
        if block.get("text") is not None:
            lines.extend(text_object(block["text"], directory).splitlines())
        for field_obj in block.get("fields") or []:
            # A field is usually "*Label:*\nvalue"; one line per field reads best in a transcript.
            lines.append(" ".join(text_object(field_obj, directory).split("\n")))
        if block.get("accessory") is not None:
            lines.append(_element(block["accessory"], directory))
    elif kind == "header":
        lines.append(f"# {text_object(block.get('text'), directory)}")
    elif kind == "context":
        lines.append(" | ".join(filter(None, (_element(e, directory) for e in block.get("elements") or []))))
    elif kind == "actions":
        lines.append(" ".join(filter(None, (_element(e, directory) for e in block.get("elements") or []))))
    elif kind == "divider":
        lines.append("---")
    elif kind == "image":
        lines.append(f"[image: {block.get('alt_text', '')}]")
    elif kind == "rich_text":
        lines.extend(_rich_text(block.get("elements"), directory).splitlines())
    elif kind == "input":
        label = text_object(block.get("label"), directory)
        if block.get("optional"):
            label += " (optional)"
        lines.append(f"{label}: {_input_element(block.get('element'), directory)}")
        if block.get("hint") is not None:
            lines.append(f"{INDENT}{text_object(block['hint'], directory)}")
    else:
        lines.append(f"[{kind} block]")
    return lines


def render_content(content: Content, directory: Directory) -> list[str]:
    """The lines a reader sees. Blocks win over the text, which Slack then uses only for notifications."""
    if content.blocks:
        lines = [line for block in content.blocks for line in render_block(block, directory)]
    else:
        lines = mrkdwn_to_text(content.text, directory).splitlines()
    return lines or ["(empty message)"]


def _visibility(message: Message, directory: Directory) -> str:
    if message.visible_to is None:
        return ""
    return f" (only visible to {directory.mention(message.visible_to)})"


def _with_body(header: str, body: Sequence[str], indent: str) -> list[str]:
    if len(body) == 1:
        return [f"{indent}{header}: {body[0]}"]
    return [f"{indent}{header}:"] + [f"{indent}{INDENT}{line}" if line else "" for line in body]


def _indent_for(message: Message) -> str:
    return INDENT + THREAD_MARK if message.is_thread_reply else ""


def render_event(event: TimelineEvent, directory: Directory) -> list[str]:
    if isinstance(event, CommandTyped):
        return [f"{directory.mention(event.user_id)}: {event.command} {event.text}".rstrip()]
    if isinstance(event, ButtonClicked):
        return [f"{directory.mention(event.user_id)} clicked [{event.button.label}]"]
    message = event.message
    who = directory.author(message.author)
    seen_by = _visibility(message, directory)
    indent = _indent_for(message)
    if isinstance(event, MessagePosted):
        return _with_body(f"{who}{seen_by}", render_content(event.content, directory), indent)
    if isinstance(event, MessageReplaced):
        return _with_body(
            f"{who} updated the message{seen_by}", render_content(event.content, directory), indent
        )
    assert isinstance(event, MessageDeleted)
    return [f"{indent}{who} deleted the message{seen_by}"]


def render_transcript(events: Sequence[TimelineEvent], directory: Directory) -> str:
    """A readable account of the conversation, grouped under a heading each time the channel changes."""
    lines: list[str] = []
    current_channel: str | None = None
    for event in events:
        if event.channel != current_channel:
            if lines:
                lines.append("")
            lines.append(f"--- {directory.channel(event.channel)} ---")
            current_channel = event.channel
        lines.extend(render_event(event, directory))
    return "\n".join(lines) + "\n" if lines else ""


def render_view(view: JsonDict, directory: Directory, *, errors: Mapping[str, str] | None = None) -> str:
    """A modal or Home tab as its person sees it: the title, the blocks (each field's error under it, as
    Slack shows ``response_action: errors``), and the modal's buttons."""
    errors = errors or {}
    lines: list[str] = []
    if view.get("type") == "modal":
        lines.append(f"[ {text_object(view.get('title'), directory)} ]")
    else:
        lines.append("[ Home ]")
    for block in view.get("blocks") or []:
        if not isinstance(block, dict):
            continue
        lines.extend(render_block(block, directory))
        error = errors.get(str(block.get("block_id")))
        if error is not None:
            lines.append(f"{INDENT}! {error}")
    if view.get("type") == "modal":
        close = text_object(view.get("close"), directory) or "Cancel"
        submit = view.get("submit")
        lines.append(f"[{close}]" + (f" [{text_object(submit, directory)}]" if submit else ""))
    return "\n".join(lines) + "\n"
