"""Keeping the bot's channel messages current: each is updated in place, at most once per
:data:`UPDATE_SPACING` in a channel, and only when what it shows has changed.

Progress comes with every poll, far more often than Slack takes updates (about one message per second per
channel). So what a message should show is *wanted* first and *sent* when its channel's turn comes: a newer
wish replaces an older one that was not sent yet, so a channel sees the latest state, never a backlog.
A final state (a backup's end) is not replaced by anything and is tried again, when Slack refuses it for
now, until :data:`FINAL_UPDATE_BUDGET` has passed — the outcome itself is told in the thread meanwhile, so
a message that stays behind misleads nobody for long. A message Slack says is gone (deleted, too old to
edit) is left alone from then on. Slack's ``Retry-After`` pauses every update (its rate limits are per
method, for the whole workspace).

What was shown lives in memory: after a restart a message may be updated once more with what it already
shows, which is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.ports import Clock, Notifier, UpdateResult
from bot.core.rules.messages import Notice, Reply

log = logging.getLogger(__name__)

#: Slack takes about one message per second per channel.
UPDATE_SPACING = timedelta(seconds=1)
#: How long a final state Slack keeps refusing is tried again.
FINAL_UPDATE_BUDGET = timedelta(minutes=20)


@dataclass(frozen=True)
class _Wish:
    content: Notice | Reply
    shows: Hashable
    final: bool
    since: datetime


class LiveMessages:
    def __init__(
        self,
        notifier: Notifier,
        clock: Clock,
        *,
        spacing: timedelta = UPDATE_SPACING,
        budget: timedelta = FINAL_UPDATE_BUDGET,
    ) -> None:
        self._notifier = notifier
        self._clock = clock
        self._spacing = spacing
        self._budget = budget
        self._shown: dict[tuple[str, str], Hashable] = {}
        self._wanted: dict[tuple[str, str], _Wish] = {}
        self._gone: set[tuple[str, str]] = set()
        self._next_turn: dict[str, datetime] = {}
        self._paused_until: datetime | None = None
        self._surprises: dict[str, str] = {}

    def known(self, channel_id: str, ts: str, shows: Hashable) -> None:
        """The message ``ts`` is known to show ``shows`` (unless an update since says otherwise): no update
        is needed until that changes."""
        self._shown.setdefault((channel_id, ts), shows)

    def is_gone(self, channel_id: str, ts: str) -> bool:
        """Whether Slack said the message can no longer be changed (deleted, or too old)."""
        return (channel_id, ts) in self._gone

    async def show(
        self, channel_id: str, ts: str, content: Notice | Reply, *, shows: Hashable, final: bool = False
    ) -> None:
        """The message ``ts`` should show ``content`` (``shows``: what a reader sees of it, compared to
        decide whether anything changed); sent now if its channel's turn has come, else when it does."""
        key = (channel_id, ts)
        if key in self._gone:
            return
        wanted = self._wanted.get(key)
        if wanted is not None and wanted.final and not final:
            return  # the end is known; nothing earlier replaces it
        if self._shown.get(key) == shows:
            self._wanted.pop(key, None)
            return
        since = wanted.since if wanted is not None and wanted.shows == shows else self._clock.now()
        self._wanted[key] = _Wish(content, shows, final, since)
        await self._send(key)

    async def flush(self) -> None:
        """Sends what is wanted in every channel whose turn has come, the longest waiting first."""
        for key in sorted(self._wanted, key=lambda k: self._wanted[k].since):
            await self._send(key)

    def _turn_has_come(self, channel_id: str, now: datetime) -> bool:
        if self._paused_until is not None and now < self._paused_until:
            return False
        turn = self._next_turn.get(channel_id)
        return turn is None or now >= turn

    async def _send(self, key: tuple[str, str]) -> None:
        wish = self._wanted.get(key)
        channel_id, ts = key
        now = self._clock.now()
        if wish is None or not self._turn_has_come(channel_id, now):
            return
        try:
            result = await self._notifier.update_message(channel_id, ts, wish.content)
        except Exception as error:
            # Logged with its stack once while it repeats, not on every try.
            text = f"{type(error).__name__}: {error}"
            if self._surprises.get(channel_id) != text:
                log.error(
                    "updating message %s in %s failed unexpectedly (%s)", ts, channel_id, text, exc_info=error
                )
            self._surprises[channel_id] = text
            result = UpdateResult("refused")
        else:
            self._surprises.pop(channel_id, None)
        now = self._clock.now()
        self._next_turn[channel_id] = now + self._spacing
        match result.outcome:
            case "updated":
                self._shown[key] = wish.shows
                del self._wanted[key]
            case "gone":
                log.info("message %s in %s can no longer be updated; leaving it as it is", ts, channel_id)
                self._gone.add(key)
                self._shown.pop(key, None)
                del self._wanted[key]
            case "refused":
                if result.retry_after is not None:
                    self._paused_until = now + timedelta(seconds=result.retry_after)
                if not wish.final:
                    # A later poll brings a newer state anyway; this one is not worth keeping.
                    del self._wanted[key]
                elif now - wish.since >= self._budget:
                    log.warning(
                        "gave up updating message %s in %s to its final state: Slack refused it for %s",
                        ts,
                        channel_id,
                        now - wish.since,
                    )
                    del self._wanted[key]
