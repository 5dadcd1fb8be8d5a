"""Views (modals and Home tabs) in the Slack stand-in's workspace, and the trigger ids that open modals.

Every payload the stand-in sends for a person's action carries a fresh trigger id
(:meth:`Views.issue_trigger`). ``views.open`` exchanges one for a modal shown to that person: once, and
within :data:`TRIGGER_LIFETIME` seconds, as Slack allows. A view keeps each version the app gave it
(``history``), the errors the app last put on its fields, and whether it is still open.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.standins.slack.payloads import new_trigger_id
from bot.standins.slack.timeline import JsonDict

#: Slack: "trigger_ids expire after 3 seconds" and each may be exchanged once.
TRIGGER_LIFETIME = 3.0

INVALID_TRIGGER = "invalid_trigger_id"
EXPIRED_TRIGGER = "expired_trigger_id"
EXCHANGED_TRIGGER = "exchanged_trigger_id"


@dataclass
class Trigger:
    trigger_id: str
    user_id: str
    issued_at: float
    exchanged: bool = False


@dataclass(eq=False)
class View:
    """One view as Slack keeps it. Live: an update changes it in place, keeping the older versions."""

    view_id: str
    user_id: str
    definition: JsonDict
    hash: str
    history: list[JsonDict] = field(default_factory=list)
    #: The errors of the app's last ``response_action: errors`` answer, by block_id.
    errors: dict[str, str] = field(default_factory=dict)
    closed: bool = False

    @property
    def type(self) -> str:
        return str(self.definition.get("type", ""))

    @property
    def callback_id(self) -> str:
        return str(self.definition.get("callback_id") or "")

    @property
    def private_metadata(self) -> str:
        return str(self.definition.get("private_metadata") or "")

    @property
    def blocks(self) -> list[JsonDict]:
        blocks = self.definition.get("blocks")
        return [b for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else []

    def input_block(self, block_id: str) -> JsonDict | None:
        return next(
            (b for b in self.blocks if b.get("type") == "input" and b.get("block_id") == block_id), None
        )

    def element(self, action_id: str) -> tuple[JsonDict, JsonDict] | None:
        """The block and element whose ``action_id`` is given (inputs, actions and accessories)."""
        for block in self.blocks:
            candidates: list[Any] = []
            if block.get("type") == "input":
                candidates = [block.get("element")]
            elif block.get("type") == "actions":
                candidates = list(block.get("elements") or [])
            elif block.get("type") == "section":
                candidates = [block.get("accessory")]
            for element in candidates:
                if isinstance(element, dict) and element.get("action_id") == action_id:
                    return block, element
        return None

    def json(self, *, team_id: str, app_id: str, bot_id: str, state: JsonDict | None = None) -> JsonDict:
        """The view as Slack serialises it in API answers and interaction payloads."""
        body: JsonDict = {
            "id": self.view_id,
            "team_id": team_id,
            "type": self.type,
            "blocks": self.blocks,
            "private_metadata": self.private_metadata,
            "callback_id": self.callback_id,
            "state": {"values": state or {}},
            "hash": self.hash,
            "clear_on_close": bool(self.definition.get("clear_on_close", False)),
            "notify_on_close": bool(self.definition.get("notify_on_close", False)),
            "root_view_id": self.view_id,
            "previous_view_id": None,
            "app_id": app_id,
            "external_id": str(self.definition.get("external_id") or ""),
            "app_installed_team_id": team_id,
            "bot_id": bot_id,
        }
        for key in ("title", "submit", "close"):
            if self.definition.get(key) is not None:
                body[key] = self.definition[key]
        return body


class Views:
    """Trigger ids, and the modals and Home tabs people see."""

    def __init__(self, *, clock: Callable[[], float], on_change: Callable[[], None] | None = None) -> None:
        self._clock = clock
        self._on_change = on_change
        self._triggers: dict[str, Trigger] = {}
        self._views: dict[str, View] = {}
        self._homes: dict[str, View] = {}

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    # ---- triggers --------------------------------------------------------------------------------------

    def issue_trigger(self, user_id: str) -> str:
        trigger = Trigger(new_trigger_id(), user_id, self._clock())
        self._triggers[trigger.trigger_id] = trigger
        return trigger.trigger_id

    def exchange(self, trigger_id: str) -> Trigger | str:
        """The trigger, now used up; or Slack's error for one that is unknown, too old or used already."""
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            return INVALID_TRIGGER
        if trigger.exchanged:
            return EXCHANGED_TRIGGER
        if self._clock() - trigger.issued_at > TRIGGER_LIFETIME:
            return EXPIRED_TRIGGER
        trigger.exchanged = True
        return trigger

    # ---- views -----------------------------------------------------------------------------------------

    def _new_view(self, user_id: str, definition: JsonDict) -> View:
        view = View(f"V{secrets.token_hex(5).upper()}", user_id, definition, self._new_hash())
        self._views[view.view_id] = view
        return view

    def _new_hash(self) -> str:
        return f"{int(self._clock())}.{secrets.token_hex(4)}"

    def open(self, user_id: str, definition: JsonDict) -> View:
        view = self._new_view(user_id, definition)
        self._changed()
        return view

    def publish(self, user_id: str, definition: JsonDict) -> View:
        home = self._homes.get(user_id)
        if home is None:
            home = self._homes[user_id] = self._new_view(user_id, definition)
        else:
            self.replace(home, definition)
        self._changed()
        return home

    def replace(self, view: View, definition: JsonDict) -> None:
        view.history.append(view.definition)
        view.definition = definition
        view.hash = self._new_hash()
        view.errors = {}
        self._changed()

    def close(self, view: View) -> None:
        view.closed = True
        self._changed()

    def show_errors(self, view: View, errors: dict[str, str]) -> None:
        view.errors = dict(errors)
        self._changed()

    def get(self, view_id: str) -> View | None:
        return self._views.get(view_id)

    def by_external_id(self, external_id: str) -> View | None:
        return next(
            (
                v
                for v in self._views.values()
                if external_id and v.definition.get("external_id") == external_id
            ),
            None,
        )

    def modals_for(self, user_id: str) -> list[View]:
        """The modals open for ``user_id``, oldest first."""
        return [
            v for v in self._views.values() if v.user_id == user_id and v.type == "modal" and not v.closed
        ]

    def opened_for(self, user_id: str) -> list[View]:
        """Every modal ever opened for ``user_id``, closed ones included, oldest first."""
        return [v for v in self._views.values() if v.user_id == user_id and v.type == "modal"]

    def home_of(self, user_id: str) -> View | None:
        return self._homes.get(user_id)

    def home_views(self, user_id: str) -> list[JsonDict]:
        """Every view published to ``user_id``'s Home tab, oldest first."""
        home = self._homes.get(user_id)
        return [*home.history, home.definition] if home is not None else []
