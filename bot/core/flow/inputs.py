"""What arrives from a person: a typed command (:class:`Invocation`) or a button press (:class:`Click`) —
who is asking, where, and how to answer them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Invocation:
    """Who typed a command, where, and how to answer them."""

    user_id: str
    user_name: str
    channel_id: str
    response_url: str
    text: str = ""


@dataclass(frozen=True)
class Click:
    """A button press on a card; ``request_id`` is the button's opaque value (a request id, or for
    ``backup_pick`` an instance id). ``response_url`` None: the button was on the person's Home tab, which
    has no message to answer through (nor a channel)."""

    user_id: str
    request_id: str
    response_url: str | None
    channel_id: str | None = None
    user_name: str | None = None
