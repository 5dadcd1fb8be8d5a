"""The App Home tabs of the stand-in's workspace: the view each person's Home tab shows, every version the
bot published (``views.publish``), and the checks Slack makes of a Home view before taking it.

The checks are those Slack documents for a ``home`` view and its blocks (docs.slack.dev/reference/views,
/reference/block-kit): at most 100 blocks; section text up to 3000 characters and up to 10 fields of up to
2000; header text up to 150; button text up to 75 and value up to 2000; up to 25 elements in an actions
block and 10 in a context block; block_id up to 255 and unique in the view. Slack refuses a view breaking
one with ``invalid_arguments`` and a line per problem in ``response_metadata.messages``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.standins.slack.timeline import Button, JsonDict, find_buttons

MAX_BLOCKS = 100
_LIMITS = {
    "section_text": 3000,
    "field_text": 2000,
    "fields": 10,
    "header_text": 150,
    "button_text": 75,
    "button_value": 2000,
    "actions_elements": 25,
    "context_elements": 10,
    "block_id": 255,
    "private_metadata": 3000,
}


def view_problems(view: Any) -> list[str]:
    """What Slack would object to in ``view`` as a Home view (empty: it is valid)."""
    if not isinstance(view, dict):
        return ["[ERROR] the view must be an object"]
    if view.get("type") != "home":
        return ["[ERROR] views.publish takes only views of type home [json-pointer:/view/type]"]
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        return ["[ERROR] missing required field: blocks [json-pointer:/view/blocks]"]
    problems = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"[ERROR] no more than {MAX_BLOCKS} items allowed [json-pointer:/view/blocks]")
    metadata = view.get("private_metadata")
    if isinstance(metadata, str) and len(metadata) > _LIMITS["private_metadata"]:
        problems.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
    seen_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"/view/blocks/{index}"
        if not isinstance(block, dict):
            problems.append(f"[ERROR] a block must be an object [json-pointer:{where}]")
            continue
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if len(block_id) > _LIMITS["block_id"]:
                problems.append(f"[ERROR] must be less than 256 characters [json-pointer:{where}/block_id]")
            if block_id in seen_ids:
                problems.append(f"[ERROR] duplicate block_id {block_id!r} [json-pointer:{where}/block_id]")
            seen_ids.add(block_id)
        problems += _block_problems(block, where)
    return problems


def _too_long(obj: Any, limit: int, where: str) -> list[str]:
    text = obj.get("text") if isinstance(obj, dict) else None
    if not isinstance(text, str) or not text:
        return [f"[ERROR] missing required field: text [json-pointer:{where}]"]
    if len(text) > limit:
        return [f"[ERROR] must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _block_problems(block: JsonDict, where: str) -> list[str]:
    kind = block.get("type")
    problems: list[str] = []
    if kind == "section":
        if block.get("text") is None and not block.get("fields"):
            problems.append(f"[ERROR] a section needs text or fields [json-pointer:{where}]")
        if block.get("text") is not None:
            problems += _too_long(block["text"], _LIMITS["section_text"], f"{where}/text")
        fields = block.get("fields") or []
        if len(fields) > _LIMITS["fields"]:
            problems.append(f"[ERROR] no more than 10 items allowed [json-pointer:{where}/fields]")
        for n, item in enumerate(fields):
            problems += _too_long(item, _LIMITS["field_text"], f"{where}/fields/{n}")
        if isinstance(block.get("accessory"), dict):
            problems += _element_problems(block["accessory"], f"{where}/accessory")
    elif kind == "header":
        problems += _too_long(block.get("text"), _LIMITS["header_text"], f"{where}/text")
    elif kind in ("actions", "context"):
        elements = block.get("elements")
        limit = _LIMITS[f"{kind}_elements"]
        if not isinstance(elements, list) or not elements:
            problems.append(f"[ERROR] missing required field: elements [json-pointer:{where}/elements]")
        elif len(elements) > limit:
            problems.append(f"[ERROR] no more than {limit} items allowed [json-pointer:{where}/elements]")
        else:
            for n, element in enumerate(elements):
                problems += _element_problems(element, f"{where}/elements/{n}")
    return problems


def _element_problems(element: Any, where: str) -> list[str]:
    if not isinstance(element, dict) or element.get("type") != "button":
        return []
    problems = _too_long(element.get("text"), _LIMITS["button_text"], f"{where}/text")
    value = element.get("value")
    if isinstance(value, str) and len(value) > _LIMITS["button_value"]:
        problems.append(f"[ERROR] must be less than 2001 characters [json-pointer:{where}/value]")
    return problems


@dataclass
class HomeTab:
    """One person's Home tab: its view id, and every view published to it, the newest last."""

    user_id: str
    view_id: str
    published: list[JsonDict] = field(default_factory=list)

    @property
    def view(self) -> JsonDict | None:
        return self.published[-1] if self.published else None

    def view_json(self, app_id: str, team_id: str) -> JsonDict:
        """The view as Slack serialises it in a ``block_actions`` payload and in answers."""
        view = self.view or {"type": "home", "blocks": []}
        return {
            "id": self.view_id,
            "team_id": team_id,
            "type": "home",
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{len(self.published)}.home",
            "app_id": app_id,
            "bot_id": "",
        }

    def buttons(self) -> list[Button]:
        return find_buttons(self.view["blocks"]) if self.view else []


class HomeTabs:
    """The Home tab of every person; ``on_change`` fires after each publish (waiters re-check then)."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self._tabs: dict[str, HomeTab] = {}
        self._ids = itertools.count(1)
        self._on_change = on_change

    def tab(self, user_id: str) -> HomeTab:
        tab = self._tabs.get(user_id)
        if tab is None:
            tab = HomeTab(user_id, f"VHOME{next(self._ids):06d}")
            self._tabs[user_id] = tab
        return tab

    def publish(self, user_id: str, view: JsonDict) -> HomeTab:
        tab = self.tab(user_id)
        tab.published.append(view)
        self._on_change()
        return tab

    def published(self, user_id: str) -> list[JsonDict]:
        """Every view published to ``user_id``'s Home tab, oldest first."""
        tab = self._tabs.get(user_id)
        return list(tab.published) if tab else []
