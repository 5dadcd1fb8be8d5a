"""Waiting for the bot in tests and the demo: for API calls, response_url posts, messages, Socket Mode links.

Whatever the stand-in records (a call, a post, a message, a link) fires one :class:`ChangeSignal`; every
wait re-checks its condition then, so waiting never polls. On timeout the error says what was seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.standins.slack.response_urls import ResponsePost
from bot.standins.slack.socket_mode import SocketConnection, SocketModeServer
from bot.standins.slack.timeline import Message, Timeline
from bot.standins.slack.traffic import ApiCall, Traffic


class ChangeSignal:
    """Wakes every waiter whenever something is recorded."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool], seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                while not predicate():
                    await self._event.wait()
        except TimeoutError:
            return predicate()
        return True


class Waits:
    """The waits of one stand-in."""

    def __init__(
        self, changes: ChangeSignal, traffic: Traffic, timeline: Timeline, socket: SocketModeServer
    ) -> None:
        self._changes = changes
        self._traffic = traffic
        self._timeline = timeline
        self._socket = socket

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = 5.0,
        what: str = "",
    ) -> None:
        """Returns once ``predicate()`` holds, re-checking whenever something is recorded."""
        if not await self._changes.wait_until(predicate, timeout):
            seen = ", ".join(c.method for c in self._traffic.calls()) or "none"
            raise TimeoutError(
                f"Slack stand-in: gave up after {timeout}s waiting for {what or 'a condition'}; "
                f"API calls so far: {seen}; response_url posts: {len(self._traffic.response_posts())}; "
                f"Socket Mode links: {len(self._socket.live)} live of {len(self._socket.connections)}"
            )

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[ApiCall]:
        """Waits for at least ``count`` calls of ``method`` (since the last clear) and returns all of them."""
        await self.wait_until(
            lambda: len(self._traffic.calls(method)) >= count, timeout=timeout, what=f"{count}x {method}"
        )
        return self._traffic.calls(method)

    async def wait_for_responses(self, count: int = 1, timeout: float = 5.0) -> list[ResponsePost]:
        """Waits for at least ``count`` response_url posts (since the last clear) and returns all of them."""
        await self.wait_until(
            lambda: len(self._traffic.response_posts()) >= count,
            timeout=timeout,
            what=f"{count} response_url post(s)",
        )
        return self._traffic.response_posts()

    async def wait_for_message(
        self,
        predicate: Callable[[Message], bool],
        *,
        timeout: float = 5.0,
    ) -> Message:
        """Waits for a (not deleted) message matching ``predicate``; replaced messages are re-checked."""
        found: list[Message] = []

        def match() -> bool:
            found[:] = [m for m in self._timeline.messages if not m.deleted and predicate(m)]
            return bool(found)

        await self.wait_until(match, timeout=timeout, what="a matching message")
        return found[0]

    async def wait_for_socket(
        self,
        *,
        count: int = 1,
        newer_than: SocketConnection | None = None,
        timeout: float = 5.0,
    ) -> SocketConnection:
        """Waits until ``count`` links are live (got ``hello``, not closed) and returns the newest.

        ``newer_than`` only counts links opened after that one, e.g. to wait for a reconnect.
        """

        def ready() -> list[SocketConnection]:
            floor = 0 if newer_than is None else newer_than.number
            return [c for c in self._socket.live if c.number > floor]

        wanted = f"{count} live Socket Mode link(s)" + (
            "" if newer_than is None else f" opened after link {newer_than.number}"
        )
        await self.wait_until(lambda: len(ready()) >= count, timeout=timeout, what=wanted)
        return ready()[-1]
