"""What people in the emulated workspace see: messages, their revisions, and who did what, in order."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

JsonDict = dict[str, Any]

#: Slack's own user id for Slackbot, which is who reports a failed slash command to the user.
SLACKBOT_USER_ID = "USLACKBOT"


@dataclass(frozen=True)
class Content:
    """One version of a message body: the fallback text and the Block Kit blocks."""

    text: str = ""
    blocks: list[JsonDict] = field(default_factory=list)


@dataclass(eq=False)
class Message:
    """A message as Slack stores it. Instances are live: replacing or deleting one updates it in place."""

    id: int
    channel: str
    ts: str
    author: str
    content: Content
    thread_ts: str | None = None
    visible_to: str | None = None
    source: str = "chat.postMessage"
    deleted: bool = False
    #: Every earlier version, oldest first (response_url replacements and chat.update alike).
    history: list[Content] = field(default_factory=list)
    #: A thread reply also sent to the channel (``reply_broadcast``): everyone sees it there too.
    broadcast: bool = False

    @property
    def text(self) -> str:
        return self.content.text

    @property
    def blocks(self) -> list[JsonDict]:
        return self.content.blocks

    @property
    def shown(self) -> str:
        """What a reader sees, as the app wrote it (mrkdwn): the text of every section, field and context
        element, a line each; the fallback ``text`` when the message has no blocks."""
        return shown_text(self.content)

    @property
    def is_ephemeral(self) -> bool:
        return self.visible_to is not None

    @property
    def is_thread_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def visible_for(self, user_id: str) -> bool:
        return self.visible_to is None or self.visible_to == user_id


def shown_text(content: Content) -> str:
    """The mrkdwn of ``content``'s blocks that a reader sees, a line each (its ``text`` without blocks)."""
    if not content.blocks:
        return content.text
    lines: list[str] = []
    for block in content.blocks:
        parts: list[Any] = [block.get("text"), *(block.get("fields") or [])]
        if block.get("type") == "context":
            parts = list(block.get("elements") or [])
        lines += [str(part.get("text", "")) for part in parts if isinstance(part, dict) and "text" in part]
    return "\n".join(lines)


@dataclass(frozen=True)
class Button:
    """A clickable button of a message, with the block it sits in (Slack reports the block_id on click)."""

    action_id: str
    value: str | None
    label: str
    block_id: str
    style: str | None = None


@dataclass(frozen=True)
class CommandTyped:
    channel: str
    user_id: str
    command: str
    text: str


@dataclass(frozen=True)
class MessagePosted:
    message: Message
    content: Content

    @property
    def channel(self) -> str:
        return self.message.channel


@dataclass(frozen=True)
class MessageReplaced:
    message: Message
    content: Content

    @property
    def channel(self) -> str:
        return self.message.channel


@dataclass(frozen=True)
class MessageDeleted:
    message: Message

    @property
    def channel(self) -> str:
        return self.message.channel


@dataclass(frozen=True)
class ButtonClicked:
    user_id: str
    message: Message
    button: Button

    @property
    def channel(self) -> str:
        return self.message.channel


TimelineEvent = CommandTyped | MessagePosted | MessageReplaced | MessageDeleted | ButtonClicked


class TsClock:
    """Issues message timestamps shaped like Slack's ("1732650000.000100"), unique and strictly increasing."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last_micros = 0

    def next(self) -> str:
        micros = max(int(self._clock() * 1_000_000), self._last_micros + 1)
        self._last_micros = micros
        seconds, fraction = divmod(micros, 1_000_000)
        return f"{seconds}.{fraction:06d}"


def _button_from(element: JsonDict, block_id: str) -> Button | None:
    if element.get("type") != "button":
        return None
    text = element.get("text")
    label = str(text.get("text", "")) if isinstance(text, dict) else str(text or "")
    value = element.get("value")
    style = element.get("style")
    return Button(
        action_id=str(element.get("action_id", "")),
        value=None if value is None else str(value),
        label=label,
        block_id=block_id,
        style=None if style is None else str(style),
    )


def find_buttons(blocks: Iterable[JsonDict]) -> list[Button]:
    """Buttons in ``actions`` blocks and section accessories, in display order."""
    found: list[Button] = []
    for index, block in enumerate(blocks):
        # Slack generates a block_id when the app gives none; any stable string serves the same purpose here.
        block_id = str(block.get("block_id") or f"block-{index}")
        candidates: list[Any] = []
        if block.get("type") == "actions":
            candidates = list(block.get("elements") or [])
        elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
            candidates = [block["accessory"]]
        for element in candidates:
            if isinstance(element, dict) and (button := _button_from(element, block_id)) is not None:
                found.append(button)
    return found


class Timeline:
    """Every message and interaction in the workspace, in the order they happened."""

    def __init__(self, *, clock: Callable[[], float], on_change: Callable[[], None] | None = None) -> None:
        self._ts = TsClock(clock)
        self._messages: list[Message] = []
        self._events: list[TimelineEvent] = []
        self._on_change = on_change

    def next_ts(self) -> str:
        return self._ts.next()

    @property
    def messages(self) -> list[Message]:
        return list(self._messages)

    @property
    def events(self) -> list[TimelineEvent]:
        return list(self._events)

    def _record(self, event: TimelineEvent) -> None:
        self._events.append(event)
        if self._on_change is not None:
            self._on_change()

    def post(
        self,
        *,
        channel: str,
        author: str,
        content: Content,
        thread_ts: str | None = None,
        visible_to: str | None = None,
        source: str = "chat.postMessage",
        broadcast: bool = False,
    ) -> Message:
        message = Message(
            id=len(self._messages) + 1,
            channel=channel,
            ts=self.next_ts(),
            author=author,
            content=content,
            thread_ts=thread_ts,
            visible_to=visible_to,
            source=source,
            broadcast=broadcast,
        )
        self._messages.append(message)
        self._record(MessagePosted(message, content))
        return message

    def replace(self, message: Message, content: Content) -> None:
        message.history.append(message.content)
        message.content = content
        self._record(MessageReplaced(message, content))

    def delete(self, message: Message) -> None:
        message.deleted = True
        self._record(MessageDeleted(message))

    def command_typed(self, *, channel: str, user_id: str, command: str, text: str) -> None:
        self._record(CommandTyped(channel=channel, user_id=user_id, command=command, text=text))

    def button_clicked(self, *, user_id: str, message: Message, button: Button) -> None:
        self._record(ButtonClicked(user_id=user_id, message=message, button=button))

    def find(self, channel: str, ts: str) -> Message | None:
        """The shared (not ephemeral) message ``ts`` in ``channel``, deleted or not."""
        return next(
            (m for m in self._messages if m.channel == channel and m.ts == ts and not m.is_ephemeral), None
        )

    def channel_messages(self, channel: str) -> list[Message]:
        """Top-level messages everyone in the channel sees (no thread replies unless broadcast, no ephemeral
        messages)."""
        return [
            m
            for m in self._messages
            if m.channel == channel
            and not m.deleted
            and not m.is_ephemeral
            and (not m.is_thread_reply or m.broadcast)
        ]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """Replies in the thread under the message ``ts``, oldest first."""
        return [
            m
            for m in self._messages
            if m.channel == channel and not m.deleted and m.thread_ts == ts and m.ts != ts
        ]

    def ephemeral_for(self, user_id: str, channel: str | None = None) -> list[Message]:
        return [
            m
            for m in self._messages
            if m.visible_to == user_id and not m.deleted and (channel is None or m.channel == channel)
        ]

    def visible_to(self, user_id: str, channel: str | None = None) -> list[Message]:
        """Everything ``user_id`` can see, shared and ephemeral, thread replies included."""
        return [
            m
            for m in self._messages
            if m.visible_for(user_id) and not m.deleted and (channel is None or m.channel == channel)
        ]
