"""What the bot sent the Slack stand-in: Web API calls and response_url posts, in order."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.standins.faults import Fault
from bot.standins.slack.response_urls import ResponsePost
from bot.standins.slack.timeline import JsonDict
from bot.standins.slack.web_api import ApiReply


@dataclass(frozen=True)
class ApiCall:
    """One recorded Web API request and the answer it got.

    ``reply`` is what the stand-in did: the real answer when the call took effect, an ``ERROR`` fault's
    answer when that kept it from taking effect, else an empty reply with status 0. ``fault`` is the
    injected fault that shaped what the client got, if any.
    """

    method: str
    params: JsonDict
    #: Case-insensitive, like HTTP headers.
    headers: Mapping[str, str]
    http_method: str
    reply: ApiReply
    fault: Fault | None = None

    @property
    def ok(self) -> bool:
        return bool(self.reply.body.get("ok"))


class Traffic:
    """The recorded calls and posts; ``on_change`` fires after each one (waiters re-check then)."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._calls: list[ApiCall] = []
        self._posts: list[ResponsePost] = []

    def record_call(self, call: ApiCall) -> None:
        self._calls.append(call)
        self._on_change()

    def record_post(self, post: ResponsePost) -> None:
        self._posts.append(post)
        self._on_change()

    def calls(self, method: str | None = None) -> list[ApiCall]:
        return [c for c in self._calls if method is None or c.method == method]

    def response_posts(self) -> list[ResponsePost]:
        return list(self._posts)

    def clear_calls(self) -> None:
        """Forgets recorded API calls and response_url posts (not the timeline), e.g. between test phases."""
        self._calls.clear()
        self._posts.clear()
