"""The console's button numbers: each button shown gets a number of its own, once, and keeps it."""

from __future__ import annotations

from bot.console import ButtonNumbers, numbered
from bot.standins.slack.timeline import Content, JsonDict, Message, find_buttons


def button(label: str, action_id: str, value: str) -> JsonDict:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
    }


PICKS: list[JsonDict] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Did you mean"}},
    {
        "type": "actions",
        "block_id": "picks",
        "elements": [
            button("redis-prod", "backup_pick", "eu-de/x"),
            button("redis-prod", "backup_pick", "eu-nl/y"),
        ],
    },
    {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "or"},
        "accessory": button("Retry", "backup_retry", "r1"),
    },
]


def message(message_id: int, blocks: list[JsonDict]) -> Message:
    return Message(
        id=message_id, channel="C1", ts=f"1.{message_id}", author="UBOT", content=Content("t", blocks)
    )


def labels(blocks: list[JsonDict]) -> list[str]:
    return [b.label for b in find_buttons(blocks)]


def test_every_button_gets_its_own_number_and_keeps_it() -> None:
    numbers = ButtonNumbers()
    first, second = message(1, PICKS), message(2, PICKS)

    shown = numbered(first.blocks, lambda b: numbers.on_message(first, b))
    again = numbered(first.blocks, lambda b: numbers.on_message(first, b))
    other = numbered(second.blocks, lambda b: numbers.on_message(second, b))

    assert labels(shown) == ["1: redis-prod", "2: redis-prod", "3: Retry"]
    assert labels(again) == labels(shown), "the same button keeps its number"
    assert labels(other) == ["4: redis-prod", "5: redis-prod", "6: Retry"]
    assert [numbers.choices[n].button.value for n in (1, 2, 3)] == ["eu-de/x", "eu-nl/y", "r1"]
    assert numbers.choices[4].message is second
    assert labels(PICKS) == ["redis-prod", "redis-prod", "Retry"], "the message itself is untouched"


def test_home_tab_buttons_are_numbered_per_person_by_what_they_do() -> None:
    numbers = ButtonNumbers()
    view = [{"type": "actions", "elements": [button("Approve", "backup_approve", "r1")]}]
    republished = [
        {"type": "actions", "block_id": "new-id", "elements": [button("Approve", "backup_approve", "r1")]}
    ]

    mine = numbered(view, lambda b: numbers.on_home("UCAROL", b))
    later = numbered(republished, lambda b: numbers.on_home("UCAROL", b))
    theirs = numbered(view, lambda b: numbers.on_home("UALICE", b))

    assert labels(mine) == labels(later) == ["1: Approve"]
    assert labels(theirs) == ["2: Approve"]
    assert numbers.choices[1].home_of == "UCAROL" and numbers.choices[1].message is None
